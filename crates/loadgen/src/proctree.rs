//! Resident memory of a server's processes, from `/proc` (Linux).
//!
//! A process tree is the root and all its descendants: from
//! `/proc/<pid>/task/<tid>/children` when the kernel has it
//! (CONFIG_PROC_CHILDREN), else from the parent pid in every
//! `/proc/<pid>/stat`.

use std::collections::BTreeSet;
use std::fs;
use std::io;

use crate::error::LoadgenError;

/// The most processes a tree may have (a bound on the walk).
const MAX_PROCESSES: usize = 4096;

/// The pids of `root` and all its descendants, sorted.
pub fn process_tree(root: u32) -> Result<Vec<u32>, LoadgenError> {
    // Reading the root's status first gives a clear error for a wrong pid.
    rss_bytes(root)?;
    let tree = match tree_from_children_files(root) {
        Some(tree) => tree,
        None => tree_from_stat(root)?,
    };
    Ok(tree.into_iter().collect())
}

/// The tree from `/proc/<pid>/task/*/children`; `None` if the kernel has
/// no such files.
fn tree_from_children_files(root: u32) -> Option<BTreeSet<u32>> {
    let mut tree = BTreeSet::from([root]);
    let mut pending = vec![root];
    while let Some(pid) = pending.pop() {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue; // exited meanwhile
        };
        for task in tasks.flatten() {
            let path = task.path().join("children");
            let children = match fs::read_to_string(&path) {
                Ok(children) => children,
                Err(error) if error.kind() == io::ErrorKind::NotFound && pid == root => {
                    return None;
                }
                Err(_) => continue,
            };
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if tree.len() < MAX_PROCESSES && tree.insert(child) {
                    pending.push(child);
                }
            }
        }
    }
    Some(tree)
}

/// The tree from the parent pids of every process in `/proc/*/stat`.
fn tree_from_stat(root: u32) -> Result<BTreeSet<u32>, LoadgenError> {
    let entries =
        fs::read_dir("/proc").map_err(|source| LoadgenError::Proc { pid: root, source })?;
    let mut parents = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some(ppid) = parent_from_stat(&stat) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = BTreeSet::from([root]);
    // Add children of known members until nothing changes (bounded: each
    // pass adds at least one, or ends).
    loop {
        let before = tree.len();
        for &(pid, ppid) in &parents {
            if tree.len() < MAX_PROCESSES && tree.contains(&ppid) {
                tree.insert(pid);
            }
        }
        if tree.len() == before {
            return Ok(tree);
        }
    }
}

/// The parent pid in a `/proc/<pid>/stat` line: the second field after the
/// command, which is in parentheses and may itself hold `)` and spaces.
pub fn parent_from_stat(stat: &str) -> Option<u32> {
    let after_command = &stat[stat.rfind(')')? + 1..];
    after_command.split_whitespace().nth(1)?.parse().ok()
}

/// The resident memory of process `pid`, in bytes (`VmRSS` of
/// `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64, LoadgenError> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|source| LoadgenError::Proc { pid, source })?;
    vm_rss_bytes(&status).ok_or_else(|| LoadgenError::Proc {
        pid,
        source: io::Error::other("no VmRSS line (a zombie?)"),
    })
}

/// `VmRSS:  1234 kB` in a status file, in bytes.
pub fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The summed resident memory of `pids`; processes that exited meanwhile
/// count as 0.
pub fn total_rss(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&pid| rss_bytes(pid).ok()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_is_read_past_a_command_with_parentheses() {
        let stat = "4242 (my (odd) cmd) S 17 4242 4242 0 -1 4194560";
        assert_eq!(parent_from_stat(stat), Some(17));
        assert_eq!(parent_from_stat("garbage"), None);
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t 9000 kB\nVmRSS:\t    1536 kB\nThreads:\t1\n";
        assert_eq!(vm_rss_bytes(status), Some(1536 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tzombie\n"), None);
    }

    #[test]
    fn tree_of_this_process_holds_its_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep(1) starts");
        let me = std::process::id();
        let tree = process_tree(me).unwrap();
        let by_stat = tree_from_stat(me).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(tree.contains(&me) && tree.contains(&child.id()), "{tree:?}");
        assert!(by_stat.contains(&child.id()), "{by_stat:?}");
        assert!(total_rss(&tree) > 0);
    }

    #[test]
    fn unknown_pid_is_an_error() {
        assert!(process_tree(u32::MAX - 1).is_err());
    }
}
