//! The promise of `TestProcess`: a child never outlives its handle, nor the
//! thread that spawned it (even when nothing drops the handle, as when a
//! test binary is aborted).

use std::time::Duration;

use iocluster_testkit::{TestProcess, WAIT, eventually};

/// Whether process `pid` still runs (a zombie waiting to be reaped does
/// not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(") ").next().unwrap_or_default();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

fn sleeper() -> tokio::process::Command {
    let mut command = tokio::process::Command::new("sleep");
    command.arg("1000");
    command
}

#[tokio::test]
async fn dropped_handle_kills_its_process() {
    let process = TestProcess::spawn("sleep", sleeper());
    let pid = process.pid();
    assert!(running(pid));
    drop(process);
    eventually(WAIT, "the process to die with its handle", || !running(pid)).await;
}

#[test]
fn process_dies_with_the_thread_that_spawned_it_even_if_its_handle_is_never_dropped() {
    let pid = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let pid = runtime.block_on(async {
            let process = TestProcess::spawn("sleep", sleeper());
            let pid = process.pid();
            // What an aborted test leaves: a handle no destructor runs for.
            std::mem::forget(process);
            pid
        });
        assert!(running(pid));
        pid
    })
    .join()
    .expect("the spawning thread");
    let deadline = std::time::Instant::now() + WAIT;
    while running(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} outlived the thread that spawned it"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
