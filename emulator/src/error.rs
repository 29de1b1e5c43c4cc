//! What can stop `local emulate`, each with the one line it ends with.

use std::path::PathBuf;
use std::process::ExitStatus;

use crate::template::TemplateError;

/// Why the emulation cannot start (or a function's instance cannot).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A function of the template without its `sam build` artifact.
    #[error("no {} (run `sam build`, or pass --build-dir)", .0.display())]
    NoBootstrap(PathBuf),
    /// The template does not define a table the functions need.
    #[error("the template has no table {0}")]
    NoTable(String),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("cannot bind a runtime API port: {0}")]
    RuntimeApi(std::io::Error),
    /// A file or a program that cannot be opened or started.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// One of the repo's scripts, or the tools they need, ran and failed.
    #[error("{what} failed ({status})")]
    Step { what: String, status: ExitStatus },
    #[error("cannot start moto: {0}")]
    Moto(std::io::Error),
    #[error("moto did not answer on {endpoint} within 30 s (log: {})", .log.display())]
    MotoSilent { endpoint: String, log: PathBuf },
    #[error("scripts/emulator/iam.py printed no credentials: {0}")]
    Credentials(serde_json::Error),
}
