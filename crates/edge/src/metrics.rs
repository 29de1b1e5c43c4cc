//! CloudWatch metrics without a single extra call: every request's figures (count,
//! latency, 4xx, 5xx by route) and the events counted while it ran (login outcomes,
//! refresh-token reuse, DynamoDB throttles and errors, refusals of an open circuit
//! breaker) go out as one log line per request in the Embedded Metric Format, which
//! CloudWatch Logs turns into metrics by itself. No `PutMetricData`, no SDK.
//!
//! The line is a tracing event of target `metrics` ([`TARGET`]), always enabled whatever
//! `RUST_LOG` says (`METRICS=off` turns it off); [`crate::telemetry`] writes it as the
//! EMF JSON object in Lambda and with the JSON log format, and as a readable text line
//! on a laptop, there only for requests that counted an event (the access log already
//! says the rest).

use std::cell::Cell;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::OnceLock;

/// The tracing target of metric lines.
pub const TARGET: &str = "metrics";

/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "ServerlessAuth";

/// The dimension naming the function (`auth`, `users`, `gateway`).
pub const SERVICE: &str = "Service";
/// The dimension naming the route: method and route template (`POST /login`).
pub const ROUTE: &str = "Route";

/// What every request reports, with its CloudWatch unit, under the dimension sets
/// `[Service]` and `[Service, Route]`.
pub const REQUEST_METRICS: [(&str, &str); 4] = [
    ("Requests", "Count"),
    ("Latency", "Milliseconds"),
    ("Status4xx", "Count"),
    ("Status5xx", "Count"),
];

/// Something worth counting that happens while a request runs; reported (unit `Count`,
/// dimension set `[Service]`) on the request's line when it happened at least once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A login that issued tokens.
    LoginSuccess,
    /// A login refused for a wrong password or an unknown username.
    LoginFailure,
    /// A login refused because the username or the client is locked out.
    LoginLockout,
    /// A refresh token presented again after it was rotated: its family is revoked.
    RefreshReuse,
    /// DynamoDB refused a call for throughput (throttling, request limit).
    DynamoDbThrottle,
    /// Any other failed DynamoDB call (timeouts, 5xx, denied access, missing table).
    DynamoDbError,
    /// A call to another service refused at once because its circuit breaker is open.
    CircuitOpen,
}

impl Event {
    pub const ALL: [Self; 7] = [
        Self::LoginSuccess,
        Self::LoginFailure,
        Self::LoginLockout,
        Self::RefreshReuse,
        Self::DynamoDbThrottle,
        Self::DynamoDbError,
        Self::CircuitOpen,
    ];

    /// The metric's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::LoginSuccess => "LoginSuccess",
            Self::LoginFailure => "LoginFailure",
            Self::LoginLockout => "LoginLockout",
            Self::RefreshReuse => "RefreshReuse",
            Self::DynamoDbThrottle => "DynamoDbThrottle",
            Self::DynamoDbError => "DynamoDbError",
            Self::CircuitOpen => "CircuitOpen",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// Every metric name a function can emit.
pub fn names() -> impl Iterator<Item = &'static str> {
    REQUEST_METRICS
        .iter()
        .map(|(name, _)| *name)
        .chain(Event::ALL.iter().map(|e| e.name()))
}

/// How often each [`Event`] happened during one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([u32; Event::ALL.len()]);

impl Counts {
    pub fn get(&self, event: Event) -> u32 {
        self.0[event as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    /// `Name=count` pairs joined with `,`: the form the metric line carries them in.
    fn encode(&self) -> String {
        let mut out = String::new();
        for event in Event::ALL {
            let n = self.get(event);
            if n > 0 {
                if !out.is_empty() {
                    out.push(',');
                }
                let _ = write!(out, "{}={n}", event.name());
            }
        }
        out
    }
}

tokio::task_local! {
    static COUNTS: Cell<Counts>;
}

/// Counts `event` for the request the current task serves; nothing outside one.
pub fn count(event: Event) {
    let _ = COUNTS.try_with(|counts| {
        let mut now = counts.get();
        now.0[event as usize] = now.0[event as usize].saturating_add(1);
        counts.set(now);
    });
}

/// Runs `work` (a request), collecting what it [`count`]s.
pub async fn counted<F: Future>(work: F) -> (F::Output, Counts) {
    let scoped = COUNTS.scope(Cell::new(Counts::default()), work);
    let mut scoped = std::pin::pin!(scoped);
    let output = scoped.as_mut().await;
    let counts = scoped.take_value().map(|c| c.get()).unwrap_or_default();
    (output, counts)
}

/// Whether metric lines are written: not with `METRICS=off`.
pub fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        !std::env::var("METRICS").is_ok_and(|v| v.eq_ignore_ascii_case("off") || v == "0")
    })
}

/// The namespace metrics go to: `METRICS_NAMESPACE`, else [`DEFAULT_NAMESPACE`].
pub fn namespace() -> &'static str {
    static NAMESPACE: OnceLock<String> = OnceLock::new();
    NAMESPACE.get_or_init(|| {
        std::env::var("METRICS_NAMESPACE")
            .ok()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty() && n.len() <= 255)
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
    })
}

/// The methods a route dimension names as they are; any other is `OTHER`, so a client
/// cannot mint new metrics (each dimension value is one) with made-up methods.
fn method_name(method: &str) -> &str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("OTHER")
}

/// One request's figures, as the access-log middleware hands them over.
pub struct Request<'a> {
    pub service: &'static str,
    pub method: &'a str,
    /// The matched route template, `None` when no route matched.
    pub route: Option<&'a str>,
    pub status: u16,
    pub latency_ms: f64,
    pub request_id: Option<&'a str>,
    pub counts: Counts,
}

/// Whether some subscriber writes metric lines as EMF; when none does (text logs on a
/// laptop), a request that counted nothing has nothing to write and skips the event.
static EMF_WRITTEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Notes that a subscriber writing EMF objects exists ([`crate::telemetry`]).
pub(crate) fn emf_written() {
    EMF_WRITTEN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Emits `request`'s metric line (see the module's notes on where it goes).
pub fn emit(request: &Request<'_>) {
    if !enabled()
        || (request.counts.is_empty() && !EMF_WRITTEN.load(std::sync::atomic::Ordering::Relaxed))
    {
        return;
    }
    let route = format!(
        "{} {}",
        method_name(request.method),
        request.route.unwrap_or("(unmatched)")
    );
    let events = if request.counts.is_empty() {
        String::new()
    } else {
        request.counts.encode()
    };
    tracing::info!(
        target: TARGET,
        service = request.service,
        route = route.as_str(),
        status = request.status,
        latency_ms = request.latency_ms,
        request_id = request.request_id.unwrap_or("-"),
        events = events.as_str(),
        "metrics"
    );
}

/// The fields of a metric line, read back from its tracing event by the formatter.
#[derive(Debug, Default)]
pub(crate) struct Line {
    service: String,
    route: String,
    status: u64,
    latency_ms: f64,
    request_id: String,
    pub(crate) events: String,
}

impl tracing::field::Visit for Line {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "service" => self.service = value.to_owned(),
            "route" => self.route = value.to_owned(),
            "request_id" => self.request_id = value.to_owned(),
            "events" => self.events = value.to_owned(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "status" {
            self.status = value;
        }
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or_default());
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "latency_ms" {
            self.latency_ms = value;
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

/// A JSON string literal of `s`.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

impl Line {
    /// The EMF object (without the line break): `_aws` metadata naming the metrics, then
    /// the dimension values, the metric values and the request's id and status as
    /// plain properties (searchable in Logs Insights, not metrics).
    pub(crate) fn emf(&self, namespace: &str, timestamp_ms: u128) -> String {
        let namespace = quoted(namespace);
        let mut out = String::with_capacity(512);
        let _ = write!(
            out,
            r#"{{"_aws":{{"Timestamp":{timestamp_ms},"CloudWatchMetrics":[{{"Namespace":{namespace},"Dimensions":[["{SERVICE}"],["{SERVICE}","{ROUTE}"]],"Metrics":["#
        );
        for (i, (name, unit)) in REQUEST_METRICS.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(out, r#"{comma}{{"Name":"{name}","Unit":"{unit}"}}"#);
        }
        out.push_str("]}");
        let events: Vec<(Event, u64)> = self
            .events
            .split(',')
            .filter_map(|pair| {
                let (name, n) = pair.split_once('=')?;
                Some((Event::from_name(name)?, n.parse().ok()?))
            })
            .collect();
        if !events.is_empty() {
            let _ = write!(
                out,
                r#",{{"Namespace":{namespace},"Dimensions":[["{SERVICE}"]],"Metrics":["#
            );
            for (i, (event, _)) in events.iter().enumerate() {
                let comma = if i == 0 { "" } else { "," };
                let _ = write!(
                    out,
                    r#"{comma}{{"Name":"{}","Unit":"Count"}}"#,
                    event.name()
                );
            }
            out.push_str("]}");
        }
        let client_error = u8::from((400..500).contains(&self.status));
        let server_error = u8::from(self.status >= 500);
        let latency = if self.latency_ms.is_finite() {
            self.latency_ms.max(0.0)
        } else {
            0.0
        };
        let _ = write!(
            out,
            r#"]}},"{SERVICE}":{},"{ROUTE}":{},"Requests":1,"Latency":{latency:.3},"Status4xx":{client_error},"Status5xx":{server_error}"#,
            quoted(&self.service),
            quoted(&self.route),
        );
        for (event, n) in events {
            let _ = write!(out, r#","{}":{n}"#, event.name());
        }
        let _ = write!(
            out,
            r#","status":{},"request_id":{}}}"#,
            self.status,
            quoted(&self.request_id)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_belong_to_the_request_that_made_them() {
        count(Event::LoginFailure); // outside any request: dropped
        let ((), counts) = counted(async {
            count(Event::LoginFailure);
            tokio::task::yield_now().await;
            count(Event::LoginFailure);
            count(Event::DynamoDbThrottle);
        })
        .await;
        assert_eq!(counts.get(Event::LoginFailure), 2);
        assert_eq!(counts.get(Event::DynamoDbThrottle), 1);
        assert_eq!(counts.get(Event::LoginSuccess), 0);
        assert_eq!(counts.encode(), "LoginFailure=2,DynamoDbThrottle=1");
        let ((), none) = counted(async {}).await;
        assert!(none.is_empty());
    }

    #[test]
    fn the_emf_object_names_each_value_it_carries() {
        let line = Line {
            service: "auth".into(),
            route: "POST /login".into(),
            status: 401,
            latency_ms: 12.5,
            request_id: "r\"1".into(),
            events: "LoginFailure=2,Bogus=3,RefreshReuse=x".into(),
        };
        let doc: serde_json::Value = serde_json::from_str(&line.emf("Ns", 1700)).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1700);
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2);
        assert_eq!(directives[1]["Metrics"][0]["Name"], "LoginFailure");
        assert_eq!(directives[1]["Metrics"].as_array().unwrap().len(), 1);
        assert_eq!(doc["LoginFailure"], 2);
        assert_eq!(doc["Status4xx"], 1);
        assert_eq!(doc["Status5xx"], 0);
        assert_eq!(doc["Latency"], 12.5);
        assert_eq!(doc["Route"], "POST /login");
        assert_eq!(doc["request_id"], "r\"1");
        assert!(doc.get("Bogus").is_none());
    }

    #[test]
    fn made_up_methods_do_not_make_new_routes() {
        assert_eq!(method_name("GET"), "GET");
        assert_eq!(method_name("BREW"), "OTHER");
        assert_eq!(method_name("get"), "OTHER");
    }
}
