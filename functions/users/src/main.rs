//! The users function under the Lambda runtime.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let state = users::AppState::from_config(&config).await?;
    shared::http::run_lambda(users::router(state)).await
}
