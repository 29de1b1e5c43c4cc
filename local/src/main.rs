//! `cargo run -p local`: the whole API on 127.0.0.1:3000 (auth), 3001 (users) and
//! 3002 (gateway) until Ctrl-C. `cargo run -p local -- emulate`: the API as
//! template.yaml deploys it, over the real Lambda binaries (the `emulator` crate).

use axum::http::StatusCode;
use settings::{ReadConfig, or_exit};

/// mimalloc instead of glibc's malloc: with requests moving between tokio's worker
/// threads, memory is often freed by another thread than the one that allocated it,
/// and glibc's arenas then contend on their locks (profiled: malloc, free and their
/// lock waits were about 15 % of the gateway's CPU; BENCHMARKS.md, benchmark 1).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set by a Lambda runtime, and by `cargo lambda watch` for every binary it starts.
const LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _logs = edge::telemetry::init();
    if std::env::var_os(LAMBDA_RUNTIME_API).is_some() {
        return refuse_lambda_invocations().await;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("emulate") {
        let cli = emulator::Cli::parse(args.into_iter().skip(1));
        let env = |key: &str| std::env::var(key).ok();
        let limits = or_exit(
            "local emulate",
            edge::server::ServerLimits::read(&settings::Vars::new(&env)),
        );
        let result = emulator::run(cli, move |listener, app| {
            local::serve::serve(listener, app, limits, std::future::pending())
        })
        .await;
        or_exit("local emulate", result);
        return Ok(());
    }
    let config = or_exit("local", local::Config::from_env());
    let ports = or_exit("local", local::Ports::from_env());
    let stack = or_exit("local", local::start(&config, ports).await);
    tracing::info!("auth service     on {}", stack.auth_url());
    tracing::info!("user service     on {}", stack.users_url());
    tracing::info!("gateway service  on {}", stack.gateway_url());
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    stack.stop().await;
    Ok(())
}

/// `cargo lambda watch` offers every binary of the workspace as a function and has
/// no way to leave one out, so `/lambda-url/local/...` lands here: answer each
/// invocation with a 404 naming the real functions instead of binding ports.
async fn refuse_lambda_invocations() -> Result<(), Box<dyn std::error::Error>> {
    tracing::warn!("local is not a Lambda function; refusing invocations");
    let app = axum::Router::new().fallback(|| async {
        errors::error::error_response(
            StatusCode::NOT_FOUND,
            "local is not a Lambda function: use /lambda-url/auth, /lambda-url/users or /lambda-url/gateway",
        )
    });
    edge::http::run_lambda(app)
        .await
        .map_err(|e| e as Box<dyn std::error::Error>)
}
