use mgraph_deploy::config::{self, AuthPolicy, Config, RuntimeMode};
use mgraph_deploy::{AppState, build_router, runtime, telemetry};

fn main() -> std::process::ExitCode {
    // Configuration is the environment's; the only arguments are these two.
    match std::env::args_os().nth(1) {
        None => {}
        Some(arg) if arg == "--help" || arg == "-h" => {
            println!("{}", config::HELP);
            return std::process::ExitCode::SUCCESS;
        }
        Some(arg) if arg == "--version" || arg == "-V" => {
            println!("mgraph-deploy {}", env!("MGRAPH_DEPLOY_VERSION"));
            return std::process::ExitCode::SUCCESS;
        }
        Some(arg) => {
            eprintln!(
                "mgraph-deploy: unknown argument {arg:?}: the service is configured by environment variables only (see --help)"
            );
            return std::process::ExitCode::from(2);
        }
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mgraph-deploy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format, &config.log_filter);
    if matches!(config.auth, AuthPolicy::Open) {
        tracing::warn!(
            "NO API KEY CONFIGURED: any process on this machine may use this service. Set FAST_API__AUTH__API_KEY__NAME and FAST_API__AUTH__API_KEY__VALUE."
        );
    }
    for (var, reason) in &config.retired {
        tracing::warn!("{var} is set but no longer read: {reason}");
    }
    tracing::info!(github_service = %config.github_service_url, version = env!("MGRAPH_DEPLOY_VERSION"), "starting");

    let router = build_router(AppState::new(&config));
    let result = match config.runtime {
        RuntimeMode::Lambda => runtime::run_lambda(router, config.lambda_timeout),
        RuntimeMode::Local => runtime::run_local(router, config.listen, config.listener),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped with an error");
            eprintln!("mgraph-deploy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
