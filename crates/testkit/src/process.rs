//! Child processes of a test (`iocluster`, `redis-server`, `node`, a load
//! balancer) that cannot outlive it.
//!
//! Every child is stopped by its PID when its handle drops; that covers a
//! test that ends or panics. A test binary that is killed or aborts runs no
//! destructor, so every child is also spawned with a parent-death signal
//! (`PR_SET_PDEATHSIG`): the kernel sends it `SIGKILL` when its parent
//! dies.
//!
//! # The rule: spawn from the thread that outlives the process
//!
//! Linux sends the parent-death signal when the *thread* that spawned the
//! child exits, not when the process does. So:
//! - A process of one test is spawned from that test's own code: libtest
//!   runs each test on a thread of its own, and `#[tokio::test]` (either
//!   flavor) polls the test's body on that thread, so the process lives
//!   exactly as long as the test. [`run_on_big_stack`](crate::run_on_big_stack)
//!   gives a scenario a thread of its own for its whole length: the same.
//! - Never spawn from a task that `tokio::spawn` may run on another thread,
//!   nor from `spawn_blocking`: a blocking-pool thread that idles for ten
//!   seconds exits, and the child dies with it.
//! - A process shared by several tests (in a `static`) must be spawned from
//!   a dedicated thread that lives as long as the test binary, or without a
//!   parent-death signal. The tests have no such process today; the one
//!   shared step, `npm ci` for the Node peer, runs to its end before its
//!   caller returns.

use std::collections::VecDeque;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::wait::WAIT;

/// Lines of a process's output kept for failure messages.
const LOG_LINES: usize = 300;

/// Makes the kernel send `signal` to the process `command` spawns when the
/// thread that spawns it exits (see the [module docs](self) for which
/// thread that must be). [`TestProcess`] does this with `SIGKILL`; use it
/// directly for processes started otherwise (a balancer that must get
/// `SIGTERM` to stop its own workers).
pub fn die_with_spawning_thread(command: &mut std::process::Command, signal: Signal) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: it makes one prctl(2) call
    // and allocates nothing.
    unsafe {
        command.pre_exec(move || nix::sys::prctl::set_pdeathsig(signal).map_err(io::Error::from));
    }
}

/// Sends `signal` to the process `pid` (by its PID, never by a name).
/// A process that is already gone is not an error.
pub fn send_signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(pid).expect("a PID fits in an i32"));
    match signal::kill(pid, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(error) => panic!("kill -{signal} {pid}: {error}"),
    }
}

/// The number of open file descriptors of process `pid` (0 once it is
/// gone).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// A child process of the test, killed (`SIGKILL` to its PID) when
/// dropped and when the spawning thread exits.
///
/// Its stdout and stderr are read as lines: the last few hundred of both
/// are kept for failure messages ([`logs`](Self::logs)), and stdout's are
/// also queued for [`wait_for_line`](Self::wait_for_line) or a reader that
/// [takes them](Self::take_stdout_lines).
///
/// ```no_run
/// # async fn example() {
/// use iocluster_testkit::{TestProcess, WAIT};
/// let mut command = tokio::process::Command::new("redis-server");
/// command.args(["--port", "0"]);
/// let mut redis = TestProcess::spawn("redis-server", command);
/// redis
///     .wait_for_line(WAIT, "redis-server to be ready", |line| {
///         line.contains("Ready to accept connections")
///     })
///     .await;
/// # }
/// ```
pub struct TestProcess {
    name: String,
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    stdout_lines: Option<mpsc::UnboundedReceiver<String>>,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl TestProcess {
    /// Spawns `command` (stdin closed, stdout and stderr read as lines),
    /// tied to the calling thread. Call it within a Tokio runtime (its
    /// output is read by tasks). Panics, naming `name`, if it cannot run.
    pub fn spawn(name: &str, command: Command) -> TestProcess {
        TestProcess::spawn_with(name, command, Stdio::null())
    }

    /// [`spawn`](Self::spawn) with a pipe to its stdin, for
    /// [`take_stdin`](Self::take_stdin). A process that exits when its
    /// stdin closes (the Node peer) then also ends with the test's handle.
    pub fn spawn_with_stdin(name: &str, command: Command) -> TestProcess {
        TestProcess::spawn_with(name, command, Stdio::piped())
    }

    fn spawn_with(name: &str, mut command: Command, stdin: Stdio) -> TestProcess {
        command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_spawning_thread(command.as_std_mut(), Signal::SIGKILL);
        let mut child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot run {name} ({error}): is it installed? (scripts/test.sh installs \
                 what the tests need)"
            )
        });
        let pid = child.id().expect("a child that was just spawned has a PID");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (lines_tx, lines_rx) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(keep_lines(stdout, Arc::clone(&log), Some(lines_tx)));
        tokio::spawn(keep_lines(stderr, Arc::clone(&log), None));
        TestProcess {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            pid,
            stdout_lines: Some(lines_rx),
            log,
        }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The pipe to its stdin (once; `None` unless spawned with
    /// [`spawn_with_stdin`](Self::spawn_with_stdin)).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Its stdout, a line at a time, for a reader of its own (once; then
    /// [`wait_for_line`](Self::wait_for_line) cannot be used). Ends when
    /// the process closes its stdout.
    pub fn take_stdout_lines(&mut self) -> mpsc::UnboundedReceiver<String> {
        self.stdout_lines
            .take()
            .expect("the stdout lines are taken once")
    }

    /// Reads its stdout until a line satisfies `matches`, and returns that
    /// line. Fails the test, with the process's last output, if the process
    /// ends its output first or nothing matches within `limit`.
    pub async fn wait_for_line(
        &mut self,
        limit: Duration,
        what: &str,
        mut matches: impl FnMut(&str) -> bool,
    ) -> String {
        let lines = self
            .stdout_lines
            .as_mut()
            .expect("the stdout lines were taken");
        let found = tokio::time::timeout(limit, async {
            while let Some(line) = lines.recv().await {
                if matches(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "{} (pid {}) ended its output before {what}:\n{}",
                self.name,
                self.pid,
                self.logs()
            ),
            Err(_) => panic!(
                "timed out after {limit:?} waiting for {what}; {} said:\n{}",
                self.name,
                self.logs()
            ),
        }
    }

    /// The last lines it wrote (stdout and stderr), for failure messages.
    pub fn logs(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Sends it `signal`.
    pub fn signal(&self, signal: Signal) {
        send_signal(self.pid, signal);
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its exit status, once it exits within `limit`; fails the test with
    /// its last output otherwise.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(error)) => panic!("cannot wait for {}: {error}", self.name),
            Err(_) => panic!(
                "{} did not exit within {limit:?}:\n{}",
                self.name,
                self.logs()
            ),
        }
    }

    /// Kills it (`SIGKILL` to its PID) and waits until it is gone.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        // SIGKILL to its PID; a no-op once it has been reaped.
        let _ = self.child.start_kill();
    }
}

/// Copies `reader`'s lines into the last-lines `log`, and to `lines` when
/// given (while anyone listens). Ends at EOF: the process closed its end.
async fn keep_lines(
    reader: impl AsyncRead + Unpin,
    log: Arc<Mutex<VecDeque<String>>>,
    lines: Option<mpsc::UnboundedSender<String>>,
) {
    let mut reader = BufReader::new(reader).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        {
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            if log.len() == LOG_LINES {
                log.pop_front();
            }
            log.push_back(line.clone());
        }
        if let Some(lines) = &lines {
            let _ = lines.send(line);
        }
    }
}
