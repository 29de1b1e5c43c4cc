//! Tracing setup: JSON lines in Lambda when asked for, readable text elsewhere; other
//! crates' own logging capped at debug, whatever the filter.

use std::io::IsTerminal;

use crate::metrics;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
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
    /// Text with timestamps: on a laptop; coloured only when stdout (where [`init`]
    /// writes) is a terminal and `NO_COLOR` is unset.
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

/// The targets that may log at trace: this workspace's crates, its access log and its
/// metric lines.
const OWN_TARGETS: [&str; 7] = [
    "access", "auth", "gateway", "local", "shared", "users", "metrics",
];

/// Every other target is held at debug at most: at trace the Lambda runtime logs each
/// raw invocation event (bodies with passwords, `Authorization` headers, refresh
/// tokens), the AWS SDK each request and response with its items, axum each rejection.
fn cap() -> Targets {
    OWN_TARGETS
        .iter()
        .fold(Targets::new().with_default(Level::DEBUG), |targets, own| {
            targets.with_target(*own, Level::TRACE)
        })
}

/// Whether text logs get ANSI colours: only on a terminal, and never with `NO_COLOR`.
fn colours() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes metric lines ([`crate::metrics`]) as EMF objects (`emf`) or, when they carry
/// events, as `inner` writes any line; every other line as `inner` does.
struct WithMetrics<F> {
    inner: F,
    emf: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithMetrics<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if event.metadata().target() != metrics::TARGET {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = metrics::Line::default();
        event.record(&mut line);
        if self.emf {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            writeln!(writer, "{}", line.emf(metrics::namespace(), now))
        } else if line.events.is_empty() {
            Ok(())
        } else {
            self.inner.format_event(ctx, writer, event)
        }
    }
}

/// A subscriber writing `format` lines that pass `filter` (and the cap on other crates'
/// trace output) to `writer`; metric lines pass whatever `filter` says.
pub fn subscriber<W>(
    format: Format,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = filter.add_directive(
        format!("{}=info", metrics::TARGET)
            .parse()
            .expect("a valid directive"),
    );
    if format != Format::Text {
        metrics::emf_written();
    }
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
                .map_event_format(|inner| WithMetrics { inner, emf: true })
                .finish()
                .with(cap()),
        ),
        Format::LambdaText => Box::new(
            builder
                .without_time()
                .with_ansi(false)
                .map_event_format(|inner| WithMetrics { inner, emf: true })
                .finish()
                .with(cap()),
        ),
        Format::Text => Box::new(
            builder
                .with_ansi(colours())
                .map_event_format(|inner| WithMetrics { inner, emf: false })
                .finish()
                .with(cap()),
        ),
    }
}

/// Installs the global subscriber once, as the environment asks; `RUST_LOG` overrides
/// the default level.
pub fn init() {
    let _ = subscriber(Format::from_env(), filter_from_env(), std::io::stdout).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn at_trace_other_crates_stop_at_debug_and_ours_go_on() {
        for format in [Format::Json, Format::LambdaText, Format::Text] {
            for filter in [
                "trace",
                "lambda_runtime=trace,trace",
                "lambda_runtime::layers::api_response=trace",
                "[Lambda runtime invoke]=trace,trace",
                "aws_smithy_runtime=trace,hyper=trace,h2=trace,reqwest=trace,axum=trace",
            ] {
                let logs = Captured::default();
                let writer = logs.clone();
                let subscriber = subscriber(format, EnvFilter::new(filter), move || writer.clone());
                tracing::subscriber::with_default(subscriber, || {
                    let span = tracing::info_span!("Lambda runtime invoke");
                    let _entered = span.enter();
                    tracing::trace!(target: "lambda_runtime::layers::api_response", body = "RAW-EVENT", "raw JSON event received from Lambda");
                    tracing::trace!(target: "lambda_http", "LAMBDA-HTTP-TRACE");
                    tracing::trace!(target: "lambda_runtime_api_client", "API-CLIENT-TRACE");
                    tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "SDK-REQUEST");
                    tracing::trace!(target: "hyper::proto::h1::role", "HYPER-TRACE");
                    tracing::trace!(target: "h2::codec", "H2-TRACE");
                    tracing::trace!(target: "reqwest::connect", "REQWEST-TRACE");
                    tracing::trace!(target: "axum::rejection", "AXUM-REJECTION");
                    tracing::debug!(target: "lambda_runtime", "RUNTIME-DEBUG");
                    tracing::trace!(target: "auth::handlers", "OWN-TRACE");
                    tracing::trace!(target: "access", "ACCESS-TRACE");
                });
                let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
                for hidden in [
                    "RAW-EVENT",
                    "LAMBDA-HTTP-TRACE",
                    "API-CLIENT-TRACE",
                    "SDK-REQUEST",
                    "HYPER-TRACE",
                    "H2-TRACE",
                    "REQWEST-TRACE",
                    "AXUM-REJECTION",
                ] {
                    assert!(
                        !text.contains(hidden),
                        "{format:?} {filter}: {hidden} in\n{text}"
                    );
                }
                if filter.starts_with("trace") || filter.ends_with(",trace") {
                    for shown in ["RUNTIME-DEBUG", "OWN-TRACE", "ACCESS-TRACE"] {
                        assert!(
                            text.contains(shown),
                            "{format:?} {filter}: no {shown} in\n{text}"
                        );
                    }
                }
                assert!(
                    !text.contains('\u{1b}'),
                    "{format:?}: ANSI codes in\n{text}"
                );
            }
        }
    }
}
