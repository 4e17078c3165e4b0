//! What the service knows about the request being served, wherever in the core it is needed:
//! its id, the API key the caller presented (by name), and the upstream calls made so far. The
//! audit events carry all three, and the request's log line the last; the request span shows the
//! id on every line, but a span's fields cannot be read back, so they are kept here as well.
//!
//! The router scopes one context around each request ([`scope`]); the core reads it through the
//! free functions below, which are harmless no-ops outside a request (unit tests, benchmarks).
//! Every step of a workflow runs in the request's own task, so the context covers them too.

use std::cell::{Cell, RefCell};
use std::future::Future;

/// The context of one request.
#[derive(Debug)]
pub struct RequestContext {
    request_id: String,
    caller: RefCell<Option<http::HeaderName>>,
    upstream_calls: Cell<u32>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// Runs `future` as the request `request_id`.
pub async fn scope<F: Future>(request_id: String, future: F) -> F::Output {
    let context = RequestContext {
        request_id,
        caller: RefCell::new(None),
        upstream_calls: Cell::new(0),
    };
    CONTEXT.scope(context, future).await
}

/// The current request's id; empty outside a request.
pub fn request_id() -> String {
    CONTEXT
        .try_with(|c| c.request_id.clone())
        .unwrap_or_default()
}

/// Records that the caller presented the API key named `name` (a header or cookie name from
/// the configuration, never the key's value).
pub fn set_caller(name: &http::HeaderName) {
    let _ = CONTEXT.try_with(|c| *c.caller.borrow_mut() = Some(name.clone()));
}

/// The name of the API key the caller presented; `None` when the service runs without one.
pub fn caller() -> Option<http::HeaderName> {
    CONTEXT
        .try_with(|c| c.caller.borrow().clone())
        .ok()
        .flatten()
}

/// Upstream calls made so far by the current request; `None` outside a request.
pub fn upstream_calls() -> Option<u32> {
    CONTEXT.try_with(|c| c.upstream_calls.get()).ok()
}

pub(crate) fn record_upstream_call() {
    let _ = CONTEXT.try_with(|c| c.upstream_calls.set(c.upstream_calls.get() + 1));
}
