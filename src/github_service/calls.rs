//! Counts upstream calls per request, for the request log line.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static CALLS: Cell<u32>;
}

/// Runs `future` with a fresh upstream-call counter (read it with [`upstream_calls`]).
pub async fn count_calls<F: Future>(future: F) -> F::Output {
    CALLS.scope(Cell::new(0), future).await
}

/// Upstream calls made so far by the current request; `None` outside [`count_calls`].
pub fn upstream_calls() -> Option<u32> {
    CALLS.try_with(Cell::get).ok()
}

pub(super) fn record_call() {
    let _ = CALLS.try_with(|c| c.set(c.get() + 1));
}
