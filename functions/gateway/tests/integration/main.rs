//! The gateway's integration tests, one binary: the Lambda binary, CORS, downstream
//! faults, forwarding over HTTP, and API Gateway events.

mod binary;
mod cors;
mod faults;
mod forwarding;
mod lambda;
mod support;
