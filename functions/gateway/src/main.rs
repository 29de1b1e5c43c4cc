//! The gateway function under the Lambda runtime.

use settings::{ReadConfig, or_exit};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let _logs = edge::telemetry::init();
    let config = or_exit("gateway", gateway::Config::from_env());
    let state = or_exit("gateway", gateway::AppState::from_config(&config));
    edge::http::run_lambda(gateway::router(state)).await
}
