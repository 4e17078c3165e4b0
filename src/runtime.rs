//! Serving the router: a local tokio listener, or the AWS Lambda runtime. Only this module knows
//! about Lambda.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `router` on `listen` until SIGTERM or Ctrl-C, then drains in-flight requests.
/// Prints the bound address on stdout (useful with port 0).
pub async fn serve_local(router: Router, listen: SocketAddr) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen} (DEPLOY__LISTEN): {e}"))?;
    let addr = listener.local_addr()?;
    println!("mgraph-deploy listening on http://{addr}");
    tracing::info!(%addr, "listening");
    serve_until(listener, router, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Serves `router` on an already bound `listener` until `shutdown` completes, then drains
/// in-flight requests. (The offline local stack runs the service in-process with this.)
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves `router` through the Lambda Runtime API (API Gateway v1/v2 and Function URL events).
pub async fn serve_lambda(router: Router) -> Result<(), BoxError> {
    tracing::info!("serving through the AWS Lambda runtime");
    lambda_http::run(router).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
