//! What a factory runs beside its adapters: tasks that end with it, and the
//! Redis clients it opened itself, closed with it.

use std::sync::Mutex;

use fred::interfaces::ClientLike;
use tokio::task::JoinHandle;

/// Tasks aborted when this is dropped.
#[derive(Debug, Default)]
pub(crate) struct Tasks(Mutex<Vec<JoinHandle<()>>>);

impl Tasks {
    /// Owns `tasks`.
    pub(crate) fn new(tasks: Vec<JoinHandle<()>>) -> Self {
        Tasks(Mutex::new(tasks))
    }

    /// Adds a task, forgetting those that have ended.
    pub(crate) fn push(&self, task: JoinHandle<()>) {
        let mut tasks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        let tasks = self.0.get_mut().unwrap_or_else(|p| p.into_inner());
        for task in tasks.drain(..) {
            task.abort();
        }
    }
}

/// Closes two clients (`QUIT`) on `runtime`: without it, fred's connection
/// tasks would reconnect for ever.
pub(crate) fn quit<A, B>(runtime: &tokio::runtime::Handle, a: A, b: B)
where
    A: ClientLike + 'static,
    B: ClientLike + 'static,
{
    runtime.spawn(async move {
        let _ = a.quit().await;
        let _ = b.quit().await;
    });
}
