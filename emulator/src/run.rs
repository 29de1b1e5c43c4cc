//! `local emulate` from start to end: the template read, the functions built, a
//! DynamoDB and SES with the template's tables, sender and IAM, then the API served
//! until Ctrl-C.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::pipeline::{Api, Setup};
use crate::ses::{MAILBOX_PATH, Mailbox};
use crate::template::{self, Template};
use crate::{Cli, Error, repo, secrets, setup};

/// `local emulate` with `cli`'s options: prepares everything, then serves the API
/// with `serve` (the accept loop of the caller's choice, which gives each request its
/// peer's address) until Ctrl-C or SIGTERM.
pub async fn run<S, F>(cli: Cli, serve: S) -> Result<(), Error>
where
    S: FnOnce(TcpListener, Router) -> F,
    F: Future<Output = ()>,
{
    let repo = repo::repo_root();
    let parameters = cli.parameters();
    let locals = template::Locals {
        parameters: parameters.clone(),
        stack_name: "local".into(),
        secret: secrets::generate_secret(64),
    };
    let template = Template::load(&cli.template, &locals)?;
    for name in &template.stood_in {
        tracing::info!(
            target: "emulate",
            "parameter {name} not given: {} (pass --parameter-overrides {name}=... for another)",
            template.parameters[name]
        );
    }

    let build_dir = match &cli.build_dir {
        Some(dir) => dir.clone(),
        None => setup::sam_build(&repo, &parameters).await?,
    };
    let dynamodb = setup::dynamodb(&repo, &cli, &template).await?;
    let api = Api::new(
        &template,
        &Setup {
            build_dir,
            // In AWS the SDK finds both services itself.
            environment: BTreeMap::from([
                ("DYNAMODB_ENDPOINT".to_owned(), dynamodb.endpoint.clone()),
                ("SES_ENDPOINT".to_owned(), dynamodb.endpoint.clone()),
            ]),
            credentials: dynamodb.credentials.clone(),
            max_instances: cli.max_instances,
            throttle: template.throttle,
        },
    )?
    .with_mailbox(Mailbox::new(&dynamodb.endpoint));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, cli.port))
        .await
        .map_err(|source| Error::Listen {
            port: cli.port,
            source,
        })?;
    let api = Arc::new(api);
    for route in &template.routes {
        tracing::info!(target: "emulate", "route {} → {}", route.key(), route.function);
    }
    println!(
        "Emulated API of {} on http://localhost:{} (DynamoDB and SES at {}; mails sent: GET http://localhost:{}{MAILBOX_PATH}; Ctrl-C stops it)",
        cli.template.display(),
        cli.port,
        dynamodb.endpoint,
        cli.port
    );
    tokio::select! {
        () = serve(listener, api.clone().router()) => {}
        () = stop_signal() => tracing::info!(target: "emulate", "shutting down"),
    }
    drop(api);
    drop(dynamodb);
    Ok(())
}

/// Ctrl-C or SIGTERM: either stops the emulation cleanly, its moto and functions too.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
