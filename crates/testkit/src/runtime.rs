//! A thread of its own for a long scenario.

use std::future::Future;

/// The stack of a scenario thread: the end-to-end scenarios' futures nest
/// deeply and are large in debug builds.
const SCENARIO_STACK: usize = 32 * 1024 * 1024;

/// Runs `scenario` to its end on a current-thread runtime, on a new thread
/// with a 32 MiB stack, and fails the calling test with the scenario's
/// panic. The processes the scenario spawns are tied to that thread, which
/// lives exactly as long as the scenario (see [`crate::process`]).
///
/// ```
/// iocluster_testkit::run_on_big_stack(|| async {
///     assert_eq!(1 + 1, 2);
/// });
/// ```
pub fn run_on_big_stack<F, Fut>(scenario: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::Builder::new()
        .stack_size(SCENARIO_STACK)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime")
                .block_on(scenario())
        })
        .expect("a scenario thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}
