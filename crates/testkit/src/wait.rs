//! Bounded waits: every wait of a test ends, and a wait that runs out fails
//! the test naming what it was waiting for.
//!
//! There is one bound for everything ([`WAIT`]) unless a test passes its
//! own: a slow machine should make a test slower, not flaky, and a hung
//! server should fail the test in seconds, not hang CI.

use std::future::Future;
use std::io;
use std::time::Duration;

/// The bound of one wait (a response, a packet, a process starting) unless
/// a test says otherwise.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often a bounded loop re-reads state that no event announces (a
/// session table, `/status`, `/proc`).
pub const POLL_EVERY: Duration = Duration::from_millis(10);

/// Awaits `future`, or fails the test after `limit`, naming `what`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use iocluster_testkit::{WAIT, within};
/// let answer = within(WAIT, "the answer", async { 42 }).await;
/// assert_eq!(answer, 42);
/// # });
/// ```
pub async fn within<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// `future`'s result, or a `TimedOut` error after `limit`: for the clients'
/// fallible operations, whose callers count failures instead of panicking
/// (a rolling restart, a killed worker).
pub async fn try_within<T>(
    limit: Duration,
    what: &str,
    future: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no {what} within {limit:?}"),
        )),
    }
}

/// Re-checks `condition` every [`POLL_EVERY`] until it holds, or fails the
/// test after `limit`. Only for state that no event announces: await the
/// event where there is one.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use iocluster_testkit::{WAIT, eventually};
/// let mut calls = 0;
/// eventually(WAIT, "the third call", || {
///     calls += 1;
///     calls == 3
/// })
/// .await;
/// # });
/// ```
pub async fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            panic!("{what} did not happen within {limit:?}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
