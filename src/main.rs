use mgraph_deploy::config::{self, AuthPolicy, Config, RuntimeMode, StoreSetting};
use mgraph_deploy::history::History;
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

    if let StoreSetting::None(Some(why)) = &config.store {
        tracing::warn!("no history is kept: {why}");
    }
    let tokio = match runtime::tokio_runtime(config.runtime) {
        Ok(tokio) => tokio,
        Err(e) => {
            eprintln!("mgraph-deploy: cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // A history that cannot be opened is a setting that cannot be used: status 2.
    let history = match tokio.block_on(History::open(&config.store, config.history_retention)) {
        Ok(history) => history,
        Err(e) => {
            eprintln!("mgraph-deploy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(history) = &history {
        tracing::info!(store = history.backend(), "history store opened");
    }
    let router = build_router(AppState::new(&config, history));
    let result = tokio.block_on(async {
        match config.runtime {
            RuntimeMode::Lambda => runtime::serve_lambda(router, config.lambda_timeout).await,
            RuntimeMode::Local => {
                runtime::serve_local(router, config.listen, config.listener).await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped with an error");
            eprintln!("mgraph-deploy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
