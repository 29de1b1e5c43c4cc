//! The mail crate's integration tests, one binary: the mails as rendered, the
//! configuration, the local mailbox over HTTP, and SES against moto.

mod config;
mod mailbox;
mod render;
mod ses;
