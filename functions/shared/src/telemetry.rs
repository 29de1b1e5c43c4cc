//! Tracing setup: JSON lines in Lambda when asked for, readable text elsewhere.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, event fields at the top level, no timestamp (Lambda
    /// adds its own): `AWS_LAMBDA_LOG_FORMAT=JSON`.
    Json,
    /// Text without timestamps or colours: in Lambda with its text log format.
    LambdaText,
    /// Text with timestamps: on a laptop.
    Text,
}

impl Format {
    /// The format the environment asks for.
    pub fn from_env() -> Self {
        let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
            .map(|f| f.eq_ignore_ascii_case("json"))
            .unwrap_or(false);
        if json {
            Self::Json
        } else if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            Self::LambdaText
        } else {
            Self::Text
        }
    }
}

/// The filter from `RUST_LOG`, `info` when it is unset or unparsable.
pub fn filter_from_env() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// A subscriber writing `format` lines that pass `filter` to `writer`.
pub fn subscriber<W>(
    format: Format,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        Format::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .without_time()
                .finish(),
        ),
        Format::LambdaText => Box::new(builder.without_time().with_ansi(false).finish()),
        Format::Text => Box::new(builder.finish()),
    }
}

/// Installs the global subscriber once, as the environment asks; `RUST_LOG` overrides
/// the default level.
pub fn init() {
    let _ = subscriber(Format::from_env(), filter_from_env(), std::io::stdout).try_init();
}
