//! The metrics the functions emit (CloudWatch Embedded Metric Format, one line per
//! request) and the template's alarms and dashboard that read them: each EMF object is
//! valid against the format's schema, each event the issue names is counted where it
//! happens (logins, lockouts, refresh-token reuse, DynamoDB throttles and errors from a
//! DynamoDB endpoint that answers them over HTTP), and every alarm and dashboard graph
//! watches a metric something emits, under the dimensions it is emitted with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use domain::Username;
use edge::metrics::{self, Event};
use serde_json::{Value, json};
use stores::Stores;
use testkit::http::{PASSWORD, serve};

use crate::logs::{self, Local};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// What a metric line said: its service, route, and each metric's value.
#[derive(Debug)]
struct Emitted {
    service: String,
    route: String,
    values: BTreeMap<String, f64>,
}

/// The problems of `doc` as an EMF object: the schema's, then what the schema cannot
/// say (every dimension a directive names is a string member, every metric a number
/// or an array of at most 100 numbers).
fn emf_problems(schema: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    let mut problems: Vec<String> = schema
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    for directive in doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for dimension in directive["Dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|set| set.as_array().into_iter().flatten())
        {
            let name = dimension.as_str().unwrap_or_default();
            match doc.get(name) {
                Some(Value::String(v)) if !v.is_empty() && v.len() <= 1024 => {}
                other => problems.push(format!("dimension {name}: {other:?}")),
            }
        }
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let name = metric["Name"].as_str().unwrap_or_default();
            match doc.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                other => problems.push(format!("metric {name}: {other:?}")),
            }
        }
    }
    problems
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(Path::new(REPO).join("fixtures/emf.schema.json"))
        .expect("fixtures/emf.schema.json");
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("a valid schema")
}

/// Checks every EMF object in `logs` and returns what each said.
fn emitted(logs: &str) -> Vec<Emitted> {
    let schema = schema();
    let mut out = Vec::new();
    for line in logs.lines().filter(|l| l.contains("\"_aws\"")) {
        let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let problems = emf_problems(&schema, &doc);
        assert!(problems.is_empty(), "{line}\n{problems:#?}");
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        for directive in directives {
            assert_eq!(directive["Namespace"], "ServerlessAuth", "{line}");
        }
        let values = directives
            .iter()
            .flat_map(|d| d["Metrics"].as_array().unwrap())
            .map(|m| {
                let name = m["Name"].as_str().unwrap().to_owned();
                let value = doc[&name].as_f64().unwrap();
                (name, value)
            })
            .collect();
        out.push(Emitted {
            service: doc["Service"].as_str().unwrap().to_owned(),
            route: doc["Route"].as_str().unwrap().to_owned(),
            values,
        });
    }
    out
}

fn send(gw: &str, method: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let response = logs::request(gw, method, path, token, &body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Total of `metric` over the lines of `service` (and of `route`, when given).
fn total(lines: &[Emitted], service: &str, route: Option<&str>, metric: &str) -> f64 {
    lines
        .iter()
        .filter(|l| l.service == service && route.is_none_or(|r| l.route == r))
        .filter_map(|l| l.values.get(metric))
        .sum()
}

/// Register, log in, fail five times and get locked out, refresh, present the old
/// refresh token again, read a profile, miss a route: through the local stack's
/// gateway with Lambda's JSON log format, so every function writes EMF lines.
fn stack_metrics() -> Vec<Emitted> {
    let local = Local::start(true, "info");
    let gw = local.gateway.clone();
    let (status, registered) = send(
        &gw,
        "POST",
        "/api/register",
        None,
        json!({"username": "metric", "email": "metric@example.com", "password": PASSWORD}),
    );
    assert_eq!(status, 200, "{registered}");
    let id = registered["user_id"].as_str().unwrap().to_owned();
    let (status, login) = send(
        &gw,
        "POST",
        "/api/login",
        None,
        json!({"username": "metric", "password": PASSWORD}),
    );
    assert_eq!(status, 200, "{login}");
    let wrong = json!({"username": "metric", "password": "wrongPassword123"});
    for _ in 0..5 {
        assert_eq!(send(&gw, "POST", "/api/login", None, wrong.clone()).0, 401);
    }
    assert_eq!(send(&gw, "POST", "/api/login", None, wrong).0, 429);
    let refresh = json!({"refresh_token": login["refresh_token"]});
    let (status, refreshed) = send(&gw, "POST", "/api/refresh", None, refresh.clone());
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(send(&gw, "POST", "/api/refresh", None, refresh).0, 401);
    let token = login["token"].as_str().unwrap();
    // The reuse ended the session: its access token is refused from now on.
    let path = format!("/api/users/{id}");
    assert_eq!(send(&gw, "GET", &path, Some(token), Value::Null).0, 401);
    assert_eq!(send(&gw, "GET", "/api/nowhere", None, Value::Null).0, 404);
    emitted(&local.stop())
}

/// A DynamoDB endpoint answering every call with `status` and the error `code`, as
/// DynamoDB's JSON protocol does.
async fn failing_dynamodb(status: StatusCode, code: &'static str) -> String {
    let app = axum::Router::new().fallback(move || async move {
        let body = json!({
            "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
            "message": "refused by the test",
        });
        (
            status,
            [("content-type", "application/x-amz-json-1.0")],
            body.to_string(),
        )
            .into_response()
    });
    serve(app).await
}

/// What a lookup of an account counts against a DynamoDB endpoint that answers with
/// `status` and `code` (through the real SDK client, retries and all).
async fn dynamodb_failure_counts(status: StatusCode, code: &'static str) -> metrics::Counts {
    let endpoint = failing_dynamodb(status, code).await;
    let sdk = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "x", "x", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .http_client(stores::dynamodb::https_client())
        .retry_config(
            aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    let config: local::Config = testkit::config(&[]);
    let stores = Stores::dynamodb(aws_sdk_dynamodb::Client::from_conf(sdk), &config);
    let username = Username::parse("metric").unwrap();
    let (found, counts) = metrics::counted(stores.accounts.find_by_username(&username)).await;
    assert!(found.is_err(), "{code}: {found:?}");
    counts
}

#[tokio::test]
async fn dynamodb_throttles_and_errors_are_counted_apart() {
    let throttled = dynamodb_failure_counts(
        StatusCode::BAD_REQUEST,
        "ProvisionedThroughputExceededException",
    )
    .await;
    assert_eq!(throttled.get(Event::DynamoDbThrottle), 1, "{throttled:?}");
    assert_eq!(throttled.get(Event::DynamoDbError), 0, "{throttled:?}");
    let failed =
        dynamodb_failure_counts(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError").await;
    assert_eq!(failed.get(Event::DynamoDbError), 1, "{failed:?}");
    assert_eq!(failed.get(Event::DynamoDbThrottle), 0, "{failed:?}");
    let missing =
        dynamodb_failure_counts(StatusCode::BAD_REQUEST, "ResourceNotFoundException").await;
    assert_eq!(missing.get(Event::DynamoDbError), 1, "{missing:?}");
}

#[test]
fn each_request_writes_one_valid_emf_object_with_what_it_counted() {
    let lines = stack_metrics();
    for service in ["gateway", "auth", "users"] {
        assert!(
            total(&lines, service, None, "Requests") >= 1.0,
            "no request of {service} in {lines:#?}"
        );
    }
    // Every request through the gateway is one line of the gateway and one of the
    // function it went to: 12 requests, 11 of them forwarded.
    assert_eq!(total(&lines, "gateway", None, "Requests"), 12.0);
    let forwarded =
        total(&lines, "auth", None, "Requests") + total(&lines, "users", None, "Requests");
    assert_eq!(forwarded, 11.0);
    let login = Some("POST /login");
    assert_eq!(total(&lines, "auth", login, "Requests"), 7.0);
    assert_eq!(total(&lines, "auth", login, "LoginSuccess"), 1.0);
    assert_eq!(total(&lines, "auth", login, "LoginFailure"), 5.0);
    assert_eq!(total(&lines, "auth", login, "LoginLockout"), 1.0);
    assert_eq!(total(&lines, "auth", login, "Status4xx"), 6.0);
    assert_eq!(
        total(&lines, "auth", Some("POST /refresh"), "RefreshReuse"),
        1.0
    );
    assert_eq!(
        total(&lines, "users", Some("GET /users/{id}"), "Status4xx"),
        1.0
    );
    assert_eq!(
        total(&lines, "gateway", Some("GET (unmatched)"), "Status4xx"),
        1.0
    );
    for service in ["gateway", "auth", "users"] {
        assert_eq!(total(&lines, service, None, "Status5xx"), 0.0, "{lines:#?}");
    }
    let latency: Vec<f64> = lines.iter().map(|l| l.values["Latency"]).collect();
    assert!(
        latency.iter().all(|ms| *ms >= 0.0 && *ms < 10_000.0),
        "{latency:?}"
    );
}

/// `template.yaml` as JSON, its short-form tags (`!Ref X`) in their long form
/// (`{"Ref": X}`, `{"Fn::Sub": ...}`).
fn template() -> Value {
    fn plain(value: serde_yaml_ng::Value) -> Value {
        use serde_yaml_ng::Value as Y;
        match value {
            Y::Null => Value::Null,
            Y::Bool(b) => Value::Bool(b),
            Y::Number(n) => serde_json::to_value(n).unwrap(),
            Y::String(s) => Value::String(s),
            Y::Sequence(items) => Value::Array(items.into_iter().map(plain).collect()),
            Y::Mapping(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k.as_str().unwrap().to_owned(), plain(v)))
                    .collect(),
            ),
            Y::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.trim_start_matches('!');
                let key = if name == "Ref" {
                    "Ref".to_owned()
                } else {
                    format!("Fn::{name}")
                };
                json!({ key: plain(tagged.value) })
            }
        }
    }
    let text = std::fs::read_to_string(Path::new(REPO).join("template.yaml")).unwrap();
    plain(serde_yaml_ng::from_str(&text).unwrap())
}

/// The namespace the template sets for the functions' metrics.
fn our_namespace(template: &Value) -> Value {
    template["Globals"]["Function"]["Environment"]["Variables"]["METRICS_NAMESPACE"].clone()
}

/// A metric as the template names it: namespace, name, dimensions (name, value).
type Watched = (Value, String, Vec<(String, Value)>);

/// Each metric an alarm watches.
fn alarm_metrics(alarm: &Value) -> Vec<Watched> {
    let dimensions = |metric: &Value| {
        metric["Dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| (d["Name"].as_str().unwrap().to_owned(), d["Value"].clone()))
            .collect::<Vec<_>>()
    };
    if let Some(name) = alarm["MetricName"].as_str() {
        return vec![(
            alarm["Namespace"].clone(),
            name.to_owned(),
            dimensions(alarm),
        )];
    }
    alarm["Metrics"]
        .as_array()
        .expect("an alarm on MetricName or on Metrics")
        .iter()
        .filter_map(|m| m.get("MetricStat"))
        .map(|stat| {
            let metric = &stat["Metric"];
            (
                metric["Namespace"].clone(),
                metric["MetricName"].as_str().unwrap().to_owned(),
                dimensions(metric),
            )
        })
        .collect()
}

/// AWS's own metrics the template may watch, with the resource type their one
/// dimension must name.
const AWS_METRICS: [(&str, &str, &str, &str); 6] = [
    (
        "AWS/Lambda",
        "Errors",
        "FunctionName",
        "AWS::Serverless::Function",
    ),
    (
        "AWS/Lambda",
        "Throttles",
        "FunctionName",
        "AWS::Serverless::Function",
    ),
    (
        "AWS/Lambda",
        "Duration",
        "FunctionName",
        "AWS::Serverless::Function",
    ),
    ("AWS/ApiGateway", "5xx", "ApiId", "AWS::Serverless::HttpApi"),
    ("AWS/ApiGateway", "4xx", "ApiId", "AWS::Serverless::HttpApi"),
    (
        "AWS/ApiGateway",
        "Count",
        "ApiId",
        "AWS::Serverless::HttpApi",
    ),
];

/// Why the metric (namespace, name, dimensions) is one nothing emits, if it is.
fn unemitted(
    template: &Value,
    emitted: &BTreeSet<(String, String)>,
    (namespace, name, dimensions): &Watched,
) -> Option<String> {
    if *namespace == our_namespace(template) {
        return match dimensions.as_slice() {
            [(dimension, Value::String(service))] if dimension == "Service" => (!emitted
                .contains(&(service.clone(), name.clone())))
            .then(|| format!("{service} never emits {name}")),
            other => Some(format!("{name}: dimensions {other:?} are not [Service]")),
        };
    }
    let namespace = namespace.as_str().unwrap_or_default();
    let Some((_, _, dimension, kind)) = AWS_METRICS
        .iter()
        .find(|(ns, metric, _, _)| *ns == namespace && metric == name)
    else {
        return Some(format!("{namespace} {name} is no metric this stack has"));
    };
    let resource = match dimensions.as_slice() {
        [(d, target)] if d == dimension => target["Ref"].as_str().unwrap_or_default(),
        other => return Some(format!("{namespace} {name}: dimensions {other:?}")),
    };
    (template["Resources"][resource]["Type"] != *kind)
        .then(|| format!("{namespace} {name}: {resource} is not a {kind}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alarm_and_graph_watches_a_metric_that_is_emitted() {
    let lines = tokio::task::spawn_blocking(stack_metrics).await.unwrap();
    let mut emitted: BTreeSet<(String, String)> = lines
        .iter()
        .flat_map(|l| l.values.keys().map(|m| (l.service.clone(), m.clone())))
        .collect();
    // DynamoDB's throttles and errors, counted by auth's and users' stores (both
    // `stores`), seen over HTTP from an endpoint that answers them.
    let throttled = dynamodb_failure_counts(StatusCode::BAD_REQUEST, "ThrottlingException").await;
    let failed =
        dynamodb_failure_counts(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError").await;
    for (event, counts) in [
        (Event::DynamoDbThrottle, throttled),
        (Event::DynamoDbError, failed),
    ] {
        assert_eq!(counts.get(event), 1, "{event:?}");
        for service in ["auth", "users"] {
            emitted.insert((service.to_owned(), event.name().to_owned()));
        }
    }
    // Circuit breakers (gateway, users in remote mode) count refusals: their own
    // tests open one; here, that the count is the request's.
    let (_, counts) = metrics::counted(async {
        let breaker = outbound::breaker::Breaker::new(outbound::breaker::BreakerConfig {
            failures: 1,
            cooldown: Duration::from_secs(60),
        });
        let now = std::time::Instant::now();
        breaker.record(outbound::breaker::Outcome::Failure, now);
        assert!(!breaker.allow(now));
    })
    .await;
    assert_eq!(counts.get(Event::CircuitOpen), 1);
    for service in ["gateway", "users"] {
        emitted.insert((service.to_owned(), Event::CircuitOpen.name().to_owned()));
    }

    let template = template();
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let resources = template["Resources"].as_object().unwrap();
    let alarms: Vec<(&String, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    assert!(alarms.len() >= 8, "{} alarms", alarms.len());
    let mut problems = Vec::new();
    let mut watched = BTreeSet::new();
    for (id, alarm) in &alarms {
        let properties = &alarm["Properties"];
        for metric in alarm_metrics(properties) {
            watched.insert(metric.1.clone());
            if let Some(problem) = unemitted(&template, &emitted, &metric) {
                problems.push(format!("alarm {id}: {problem}"));
            }
        }
        if properties["AlarmActions"] != json!([{"Ref": "AlarmTopic"}]) {
            problems.push(format!("alarm {id} does not notify AlarmTopic"));
        }
        if !readme.contains(id.as_str()) {
            problems.push(format!("README.md does not say what to do when {id} fires"));
        }
    }
    for required in [
        "Errors",
        "Throttles",
        "5xx",
        "LoginFailure",
        "LoginLockout",
        "RefreshReuse",
        "DynamoDbThrottle",
    ] {
        if !watched.contains(required) {
            problems.push(format!("no alarm watches {required}"));
        }
    }
    assert_eq!(
        resources["AlarmEmailSubscription"]["Properties"]["Endpoint"],
        json!({"Ref": "AlarmEmail"})
    );

    // The dashboard: each graph's metrics, with "..." repeating the one before.
    let dashboard = resources
        .values()
        .find(|r| r["Type"] == "AWS::CloudWatch::Dashboard")
        .expect("a dashboard");
    let sub = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_array()
        .expect("DashboardBody: !Sub [body, {Namespace}]");
    assert_eq!(sub[1]["Namespace"], our_namespace(&template));
    let body: Value = serde_json::from_str(sub[0].as_str().unwrap()).expect("the body is JSON");
    let mut graphs = 0;
    for widget in body["widgets"].as_array().unwrap() {
        if widget["type"] != "metric" {
            continue;
        }
        let mut previous: Vec<Value> = Vec::new();
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            let row: Vec<Value> = if row[0] == "..." {
                let mut full = previous[..previous.len() - (row.len() - 1)].to_vec();
                full.extend(row[1..].iter().cloned());
                full
            } else {
                row.clone()
            };
            previous = row.clone();
            graphs += 1;
            let text = |v: &Value| v.as_str().unwrap().to_owned();
            let reference = |v: &Value| -> Value {
                let s = text(v);
                match s.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
                    Some(name) => json!({"Ref": name}),
                    None => Value::String(s),
                }
            };
            let namespace = if row[0] == "${Namespace}" {
                our_namespace(&template)
            } else {
                row[0].clone()
            };
            let metric = (
                namespace,
                text(&row[1]),
                vec![(text(&row[2]), reference(&row[3]))],
            );
            if let Some(problem) = unemitted(&template, &emitted, &metric) {
                problems.push(format!("dashboard: {problem}"));
            }
        }
    }
    assert!(graphs >= 20, "{graphs} graphed metrics");
    assert!(problems.is_empty(), "{problems:#?}");
}
