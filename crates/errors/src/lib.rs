//! The API's error contract: the one [`Error`] every failure is answered with
//! (`{"status": "<code>", "message": "<text>"}`), and the JSON and query extractors whose
//! rejections are that error.

pub mod error;
pub mod json;
pub mod query;

pub use error::Error;
pub use json::Json;
pub use query::Query;
