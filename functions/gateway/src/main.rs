//! The gateway function under the Lambda runtime.

use shared::config::or_exit;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let _logs = shared::telemetry::init();
    let config = or_exit("gateway", shared::Config::from_env());
    let state = or_exit("gateway", gateway::AppState::from_config(&config));
    shared::http::run_lambda(gateway::router(state)).await
}
