//! The auth function under the Lambda runtime.

use settings::{ReadConfig, or_exit};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let _logs = edge::telemetry::init();
    let config = or_exit("auth", auth::Config::from_env());
    let state = or_exit("auth", auth::AppState::from_config(&config).await);
    edge::http::run_lambda(auth::router(state)).await
}
