//! `cargo run -p local`: the whole API on 127.0.0.1:3000 (auth), 3001 (users) and
//! 3002 (gateway) until Ctrl-C.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let ports = local::Ports::from_env()?;
    let stack = local::start(&config, ports).await?;
    tracing::info!("auth service     on {}", stack.auth_url());
    tracing::info!("user service     on {}", stack.users_url());
    tracing::info!("gateway service  on {}", stack.gateway_url());
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    stack.stop().await;
    Ok(())
}
