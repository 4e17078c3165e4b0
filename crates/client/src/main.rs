#[tokio::main]
async fn main() -> std::process::ExitCode {
    mgraph_deploy_client::cli::main().await
}
