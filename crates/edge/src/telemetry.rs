//! Tracing setup: JSON lines in Lambda when asked for, readable text elsewhere; other
//! crates' own logging capped at debug, whatever the filter.

use std::fmt::Write as _;
use std::io::IsTerminal;

use crate::metrics;

mod buffered;
pub use buffered::{FLUSH_EVERY, FlushOnDrop};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

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
    ACCESS, "auth", "gateway", "local", "shared", "users", "metrics",
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
/// events, as `inner` writes any line; access lines straight when `plain_access` (see
/// [`access_line`]); every other line as `inner` does.
struct WithMetrics<F> {
    inner: F,
    emf: bool,
    /// `inner` is the default text format with timestamps and without ANSI colours.
    plain_access: bool,
}

impl<F> WithMetrics<F> {
    /// `inner` with metric lines as EMF objects: the formats read in CloudWatch.
    fn emf(inner: F) -> Self {
        Self {
            inner,
            emf: true,
            plain_access: false,
        }
    }
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
        if self.plain_access
            && event.metadata().target() == ACCESS
            && ctx.event_scope().is_none()
            && let Some(written) = access_line(&mut writer, event)
        {
            return written;
        }
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

/// The target of the access log lines (`crate::http`).
pub(crate) const ACCESS: &str = "access";

/// An access line as the default text format writes it (timestamp, level, target, the
/// message, then `name=value` with strings quoted), written straight: one per request,
/// so the generic path's `Debug` escaping and styling are worth skipping. The fields are
/// written in one pass to a buffer of the thread's, which the line takes only when every
/// value was plain; `None`, with nothing written, when a value would need escaping or is
/// of a kind this does not write: the default format writes that line.
fn access_line(writer: &mut Writer<'_>, event: &Event<'_>) -> Option<std::fmt::Result> {
    thread_local! {
        static FIELDS: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    FIELDS.with_borrow_mut(|fields| {
        fields.clear();
        let mut plain = PlainFields {
            out: fields,
            first: true,
            plain: true,
        };
        event.record(&mut plain);
        if !plain.plain {
            return None;
        }
        Some(
            write_timestamp(writer)
                .and_then(|()| writer.write_str(level_and_target(*event.metadata().level())))
                .and_then(|()| writer.write_str(fields))
                .and_then(|()| writeln!(writer)),
        )
    })
}

/// What the default format writes between the timestamp and the fields of an access
/// line: the level right-aligned in five columns, then the target.
fn level_and_target(level: Level) -> &'static str {
    match level {
        Level::TRACE => " TRACE access: ",
        Level::DEBUG => " DEBUG access: ",
        Level::INFO => "  INFO access: ",
        Level::WARN => "  WARN access: ",
        Level::ERROR => " ERROR access: ",
    }
}

/// A string the default format writes as it is within quotes: visible ASCII other than
/// `"` and `\`.
fn needs_no_escaping(value: &str) -> bool {
    visible(value) && !value.contains(['"', '\\'])
}

/// Visible ASCII and spaces only.
fn visible(text: &str) -> bool {
    text.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// [`access_line`]'s fields, each after a space but the first: the message, then
/// `name=value`, strings in quotes; `plain` turns false at the first value the default
/// format would write otherwise (what was written is then thrown away).
struct PlainFields<'a> {
    out: &'a mut String,
    first: bool,
    plain: bool,
}

impl PlainFields<'_> {
    /// The separator and, but for the message, `name=`; false (and nothing written) for
    /// a raw identifier, which the default format writes without its `r#`.
    fn start(&mut self, field: &tracing::field::Field) -> bool {
        if !self.plain || field.name().starts_with("r#") {
            self.plain = false;
            return false;
        }
        if !std::mem::take(&mut self.first) {
            self.out.push(' ');
        }
        if field.name() != "message" {
            self.out.push_str(field.name());
            self.out.push('=');
        }
        true
    }
}

impl tracing::field::Visit for PlainFields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if !self.start(field) {
            return;
        }
        if field.name() == "message" {
            self.plain = visible(value);
            self.out.push_str(value);
        } else {
            self.plain = needs_no_escaping(value);
            self.out.push('"');
            self.out.push_str(value);
            self.out.push('"');
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if self.start(field) {
            self.plain = write!(self.out, "{value}").is_ok();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if !self.start(field) {
            return;
        }
        let from = self.out.len();
        // The default format writes a message's control characters escaped.
        self.plain = write!(self.out, "{value:?}").is_ok()
            && (field.name() != "message" || visible(&self.out[from..]));
    }

    fn record_error(&mut self, _: &tracing::field::Field, _: &(dyn std::error::Error + 'static)) {
        self.plain = false; // the default format adds the error's sources
    }
}

/// What tracing-subscriber's `SystemTime` writes (`2026-12-02T23:59:59.123456Z`), its part
/// up to the seconds taken from it once a second per thread: the date and time fields
/// were the dearest part of an access line. The part is kept only when the second had
/// not changed by the time it was written, so it always belongs to the second it is
/// used for.
fn write_timestamp(writer: &mut Writer<'_>) -> std::fmt::Result {
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let seconds = |now: SystemTime| now.duration_since(UNIX_EPOCH).ok();
    let Some(now) = seconds(SystemTime::now()) else {
        return tracing_subscriber::fmt::time::SystemTime.format_time(writer);
    };
    SECOND.with_borrow_mut(|(second, prefix)| {
        if *second == now.as_secs() {
            writer.write_str(prefix)?;
            let mut digits = *b"000000Z";
            let mut micros = now.subsec_micros();
            for digit in digits[..6].iter_mut().rev() {
                *digit = b'0' + (micros % 10) as u8;
                micros /= 10;
            }
            return writer.write_str(std::str::from_utf8(&digits).unwrap_or("000000Z"));
        }
        let mut full = String::new();
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut full))?;
        let after = seconds(SystemTime::now()).map(|d| d.as_secs());
        if let (Some(dot), true) = (full.rfind('.'), after == Some(now.as_secs())) {
            *second = now.as_secs();
            prefix.clear();
            prefix.push_str(&full[..=dot]);
        }
        writer.write_str(&full)
    })
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
                .map_event_format(WithMetrics::emf)
                .finish()
                .with(cap()),
        ),
        Format::LambdaText => Box::new(
            builder
                .without_time()
                .with_ansi(false)
                .map_event_format(WithMetrics::emf)
                .finish()
                .with(cap()),
        ),
        Format::Text => {
            let ansi = colours();
            Box::new(
                builder
                    .with_ansi(ansi)
                    .map_event_format(move |inner| WithMetrics {
                        inner,
                        emf: false,
                        plain_access: !ansi,
                    })
                    .finish()
                    .with(cap()),
            )
        }
    }
}

/// Installs the global subscriber once, as the environment asks; `RUST_LOG` overrides
/// the default level. The timestamped text format off a terminal (the local stack in a
/// pipe or a file) is block-buffered ([`buffered`]: a line waits at most
/// [`FLUSH_EVERY`], a warning or an error not at all); every other format writes each
/// line at once. The answer writes what is pending when `main` drops it.
pub fn init() -> FlushOnDrop {
    let format = Format::from_env();
    let filter = filter_from_env();
    // Only the first call installs one; later calls leave it as it is.
    let _ = if format == Format::Text && !std::io::stdout().is_terminal() {
        subscriber(format, filter, buffered::BufferedStdout).try_init()
    } else {
        subscriber(format, filter, std::io::stdout).try_init()
    };
    FlushOnDrop
}

/// A log sink for tests: keeps every byte written to it, shared by its clones.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    /// What `emit` logs through `subscriber(Text)` and through tracing-subscriber's own
    /// text format (no colours), each line without its timestamp.
    fn text_lines(emit: impl Fn()) -> (Vec<String>, Vec<String>) {
        let ours = Captured::default();
        let writer = ours.clone();
        let subscriber = subscriber(Format::Text, EnvFilter::new("info"), move || writer.clone());
        tracing::subscriber::with_default(subscriber, &emit);
        let theirs = Captured::default();
        let writer = theirs.clone();
        let reference = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(reference, &emit);
        let lines = |logs: &Captured| {
            String::from_utf8(logs.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|line| line.split_once(' ').unwrap().1.to_owned())
                .collect::<Vec<_>>()
        };
        (lines(&ours), lines(&theirs))
    }

    #[test]
    fn access_lines_written_straight_are_what_the_default_text_format_writes() {
        assert!(
            !colours(),
            "tests write to a terminal: no plain access lines to test"
        );
        let (ours, theirs) = text_lines(|| {
            for (id, route, latency) in [
                (
                    "0f8e3a52-7c1d-4f4e-9d6b-1f0f2c3d4e5f",
                    "/api/users/{id}",
                    0.5,
                ),
                ("req-1:a/b+c=d_e.f", "-", 12.345),
                ("quote\"d", "/x", 1.0),
                ("back\\slash", "/x", 1.0),
                ("tab\tand\u{1b}[31m", "/x", 1.0),
                ("é", "/x", 1.0),
            ] {
                let method = axum::http::Method::GET;
                tracing::info!(
                    target: "access",
                    request_id = id,
                    %method,
                    route,
                    status = 200u16,
                    latency_ms = format_args!("{latency:.2}"),
                    "request"
                );
            }
            tracing::info!(target: "access", "a message with an ANSI \u{1b}[31m sequence");
            tracing::info!(target: "access", "{}", "a message longer than sixty-four bytes, which is kept apart");
            tracing::warn!(target: "access", count = 3i64, ok = true, ratio = 0.25f64, "other kinds");
        });
        assert_eq!(ours.len(), 9, "{ours:#?}");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn each_levels_prefix_is_the_default_formats() {
        for level in [
            Level::TRACE,
            Level::DEBUG,
            Level::INFO,
            Level::WARN,
            Level::ERROR,
        ] {
            let default = format!(" {:>5} {ACCESS}: ", level.as_str());
            assert_eq!(level_and_target(level), default);
        }
    }

    /// The access line's timestamp is tracing-subscriber's own, to the second, also when
    /// its seconds part comes from the per-second cache.
    #[test]
    fn timestamps_are_the_default_formats() {
        let stamp = |cached: bool| {
            let mut text = String::new();
            let mut writer = Writer::new(&mut text);
            if cached {
                write_timestamp(&mut writer).unwrap();
            } else {
                tracing_subscriber::fmt::time::SystemTime
                    .format_time(&mut writer)
                    .unwrap();
            }
            text
        };
        let mut compared = 0;
        for _ in 0..1000 {
            let (before, first, second, after) =
                (stamp(false), stamp(true), stamp(true), stamp(false));
            let upto_seconds = |t: &str| t.rsplit_once('.').unwrap().0.to_owned();
            assert_eq!(first.len(), before.len(), "{first} vs {before}");
            assert!(
                second.ends_with('Z') && second.len() == before.len(),
                "{second}"
            );
            assert!(first <= second, "{first} then {second}");
            if upto_seconds(&before) == upto_seconds(&after) {
                assert_eq!(upto_seconds(&first), upto_seconds(&before));
                assert_eq!(upto_seconds(&second), upto_seconds(&before));
                compared += 1;
            }
        }
        assert!(compared > 900, "{compared} of 1000 within one second");
    }

    #[test]
    fn only_plain_values_are_written_straight() {
        use tracing_subscriber::layer::{Context, Layer};

        #[derive(Clone, Default)]
        struct Straight(Arc<Mutex<Vec<Option<String>>>>);

        impl<S: Subscriber> Layer<S> for Straight {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                let mut text = String::new();
                let written = access_line(&mut Writer::new(&mut text), event);
                self.0.lock().unwrap().push(written.map(|r| {
                    r.unwrap();
                    text
                }));
            }
        }
        let straight = Straight::default();
        let subscriber = tracing_subscriber::registry().with(straight.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "access", request_id = "abc", status = 200u16, "request");
            tracing::info!(target: "access", request_id = "a\"b", "request");
            tracing::info!(target: "access", "{}", "tab\t");
            let err = std::io::Error::other("boom");
            tracing::info!(target: "access", error = &err as &dyn std::error::Error, "request");
        });
        let written = straight.0.lock().unwrap().clone();
        assert_eq!(written.len(), 4);
        let first = written[0]
            .as_deref()
            .expect("a plain line is written straight");
        assert!(
            first.ends_with("  INFO access: request request_id=\"abc\" status=200\n"),
            "{first:?}"
        );
        assert!(written[1..].iter().all(Option::is_none), "{written:?}");
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
