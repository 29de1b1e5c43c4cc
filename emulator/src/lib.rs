//! `cargo run -p local -- emulate`: the API as `template.yaml` deploys it, on
//! localhost and without Docker. An emulated API Gateway (routes, CORS, payload format
//! 2.0, its own error answers: [`apigw`], [`cors`]) in front of the real `bootstrap`
//! binaries of `sam build` run behind a Lambda Runtime API ([`lambda`]), with the
//! template's environment, timeouts and memory sizes ([`template`]), on a DynamoDB
//! and an SES (one moto) whose tables, verified sender and per-function IAM policies
//! come from the template too ([`setup`]); the mails sent are read at `/_aws/ses`
//! ([`ses`]).
//!
//! [`pipeline`] takes a request through all of these; [`run`] is the whole command,
//! whose options are [`Cli`]; [`repo`] finds the checkout whose scripts it runs, and
//! [`secrets`] makes the secrets AWS would generate.

pub mod apigw;
pub mod cli;
pub mod cors;
mod error;
pub mod lambda;
pub mod pipeline;
pub mod repo;
pub mod route;
mod run;
pub mod secrets;
pub mod ses;
pub mod setup;
pub mod template;

pub use cli::Cli;
pub use error::Error;
pub use pipeline::{Api, Setup};
pub use run::run;
