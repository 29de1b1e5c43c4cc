//! The users function under the Lambda runtime.

use settings::{ReadConfig, or_exit};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let _logs = edge::telemetry::init();
    let config = or_exit("users", users::Config::from_env());
    let state = or_exit("users", users::AppState::from_config(&config).await);
    edge::http::run_lambda(users::router(state)).await
}
