//! The users function under the Lambda runtime.

use shared::config::or_exit;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let _logs = shared::telemetry::init();
    let config = or_exit("users", shared::Config::from_env());
    let state = or_exit("users", users::AppState::from_config(&config).await);
    shared::http::run_lambda(users::router(state)).await
}
