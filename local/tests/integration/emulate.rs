//! The emulated API (`local emulate`, the `emulator` crate) over stand-in functions that speak the Lambda
//! Runtime API (fixtures/emulate/fake_function.py) and a test template
//! (fixtures/emulate/template.yaml): events as API Gateway builds them, answers mapped
//! back, API Gateway's own error answers, route selection, CORS, throttling, and
//! instances started, reused, killed and replaced as Lambda does.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use emulator::template::{Locals, Template};
use emulator::{Api, Setup};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/emulate");
const SECRET: &str = "a-local-secret-for-the-emulation-tests";

struct Emulated {
    url: String,
    api: Arc<Api>,
    _build: TempDir,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `sam build`'s layout for the test template's functions, each bootstrap the fake.
fn build_dir(template: &Template) -> TempDir {
    let dir = std::env::temp_dir().join(format!("emulate-build-{}", uuid::Uuid::new_v4()));
    let script = std::fs::read_to_string(Path::new(FIXTURES).join("fake_function.py"))
        .expect("the fake function");
    for function in &template.functions {
        let home = dir.join(&function.id);
        std::fs::create_dir_all(&home).unwrap();
        let bootstrap = home.join("bootstrap");
        std::fs::write(&bootstrap, format!("#!/usr/bin/env python3\n{script}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    TempDir(dir)
}

fn load(parameters: &[(&str, &str)]) -> Result<Template, String> {
    let locals = Locals {
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        stack_name: "local".into(),
        secret: SECRET.into(),
    };
    Template::load(&Path::new(FIXTURES).join("template.yaml"), &locals).map_err(|e| e.to_string())
}

async fn emulate_with(max_instances: usize, throttle: Option<(u64, u64)>) -> Emulated {
    let template = load(&[]).expect("the test template loads");
    let build = build_dir(&template);
    let api = Arc::new(
        Api::new(
            &template,
            &Setup {
                build_dir: build.0.clone(),
                environment: BTreeMap::from([("EXTRA".to_owned(), "added".to_owned())]),
                credentials: BTreeMap::new(),
                max_instances,
                throttle,
            },
        )
        .expect("the API starts"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    tokio::spawn(local::serve::serve(
        listener,
        api.clone().router(),
        edge::server::ServerLimits::default(),
        std::future::pending(),
    ));
    Emulated {
        url,
        api,
        _build: build,
    }
}

async fn emulate() -> Emulated {
    emulate_with(3, None).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// What the fake echoed: the function's name, the event and its environment.
async fn echo(request: reqwest::RequestBuilder) -> (reqwest::header::HeaderMap, Value) {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, json_of(response).await)
}

async fn pid(e: &Emulated, query: &str) -> u64 {
    pid_at(e.url.clone(), query.to_owned()).await
}

async fn pid_at(url: String, query: String) -> u64 {
    let reply = json_of(
        client()
            .get(format!("{url}/pid{query}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply["pid"].as_u64().expect("a pid")
}

/// The pids of `n` requests sent at once.
async fn pids_at_once(e: &Emulated, n: usize, query: &str) -> Vec<u64> {
    let calls: Vec<_> = (0..n)
        .map(|_| tokio::spawn(pid_at(e.url.clone(), query.to_owned())))
        .collect();
    let mut pids = Vec::new();
    for call in calls {
        pids.push(call.await.unwrap());
    }
    pids
}

/// API Gateway's own answer: the status, `{"message": ...}` and its request id.
async fn assert_gateway_error(response: reqwest::Response, want: u16, message: &str) {
    let status = response.status().as_u16();
    assert!(response.headers().contains_key("apigw-requestid"));
    let body = json_of(response).await;
    assert_eq!(status, want, "{body}");
    assert_eq!(body, json!({ "message": message }));
}

#[tokio::test]
async fn a_request_becomes_a_payload_format_2_event_as_api_gateway_builds_it() {
    let e = emulate().await;
    let before = chrono::Utc::now().timestamp_millis();
    let (headers, echoed) = echo(
        client()
            .post(format!("{}/echo/a%20b?x=1&x=2&y=z%21", e.url))
            .header("X-Multi", "one")
            .header("x-multi", "two")
            .header("cookie", "a=1; b=2")
            .header("content-type", "application/json")
            .header("user-agent", "emulate-test/1")
            .body(r#"{"k":1}"#),
    )
    .await;
    let event = &echoed["event"];
    assert_eq!(echoed["function"], "FakeFunction");
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "ANY /echo/{name}");
    assert_eq!(event["rawPath"], "/echo/a%20b");
    assert_eq!(event["rawQueryString"], "x=1&x=2&y=z%21");
    assert_eq!(
        event["queryStringParameters"],
        json!({"x": "1,2", "y": "z!"})
    );
    assert_eq!(event["pathParameters"], json!({"name": "a b"}));
    assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
    assert_eq!(event["headers"]["x-multi"], "one,two");
    assert!(event["headers"].get("cookie").is_none(), "{event}");
    assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(event["headers"]["content-length"], "7");
    assert!(
        event["headers"]["x-amzn-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    assert_eq!(event["body"], r#"{"k":1}"#);
    assert_eq!(event["isBase64Encoded"], false);
    let context = &event["requestContext"];
    assert_eq!(context["http"]["method"], "POST");
    assert_eq!(context["http"]["path"], "/echo/a%20b");
    assert_eq!(context["http"]["protocol"], "HTTP/1.1");
    assert_eq!(context["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(context["http"]["userAgent"], "emulate-test/1");
    assert_eq!(context["routeKey"], "ANY /echo/{name}");
    assert_eq!(context["stage"], "$default");
    assert_eq!(context["accountId"], "123456789012");
    assert_eq!(
        context["requestId"].as_str(),
        headers.get("apigw-requestid").and_then(|v| v.to_str().ok())
    );
    let epoch = context["timeEpoch"].as_i64().unwrap();
    assert!(epoch >= before && epoch <= before + 60_000, "{epoch}");
    let time = context["time"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z").expect(time);
    assert_eq!(parsed.timestamp(), epoch / 1000);

    // Nothing to say, nothing sent: no body, cookies, query or path parameters.
    let (_, bare) = echo(client().get(format!("{}/echo", e.url))).await;
    let event = bare["event"].as_object().unwrap();
    for absent in ["body", "cookies", "queryStringParameters", "pathParameters"] {
        assert!(!event.contains_key(absent), "{absent} in {bare}");
    }
    assert_eq!(event["rawQueryString"], "");
    assert_eq!(event["isBase64Encoded"], false);
}

#[tokio::test]
async fn bodies_that_are_not_text_arrive_base64_encoded() {
    let e = emulate().await;
    let bytes = vec![0u8, 159, 146, 150, 255];
    for content_type in [
        Some("application/octet-stream"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = client().post(format!("{}/echo", e.url)).body(bytes.clone());
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let (_, echoed) = echo(request).await;
        assert_eq!(echoed["event"]["isBase64Encoded"], true, "{content_type:?}");
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(echoed["event"]["body"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, bytes, "{content_type:?}");
    }
    let (_, text) = echo(
        client()
            .post(format!("{}/echo", e.url))
            .header("content-type", "text/plain; charset=utf-8")
            .body("plain words"),
    )
    .await;
    assert_eq!(text["event"]["isBase64Encoded"], false);
    assert_eq!(text["event"]["body"], "plain words");
}

#[tokio::test]
async fn functions_get_the_templates_environment_resolved_and_lambdas_own_variables_only() {
    let e = emulate().await;
    let (_, echoed) = echo(client().get(format!("{}/echo", e.url))).await;
    let env = &echoed["env"];
    assert_eq!(
        env["GREETING"], "hello",
        "a Globals variable from a parameter default"
    );
    assert_eq!(
        env["TABLE"], "local-Table",
        "a table's Ref is its local name"
    );
    assert_eq!(env["SECRET"], SECRET, "a secretsmanager dynamic reference");
    assert_eq!(env["STACK"], "local-fake", "Sub with AWS::StackName");
    assert_eq!(env["EXTRA"], "added");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "FakeFunction");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(
        env["AWS_LAMBDA_LOG_FORMAT"], "JSON",
        "LoggingConfig of Globals"
    );
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert!(
        env["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    for inherited in ["CARGO", "CARGO_MANIFEST_DIR", "HOME", "RUST_LOG"] {
        assert!(
            env.get(inherited).is_none(),
            "{inherited} leaked into the function"
        );
    }

    let template = load(&[("Greeting", "hi")]).unwrap();
    let fake = template.function("FakeFunction").unwrap();
    assert_eq!(fake.environment["GREETING"], "hi");
    assert_eq!(fake.timeout, Duration::from_secs(2), "Globals' Timeout");
    assert_eq!(
        template.function("OtherFunction").unwrap().timeout,
        Duration::from_secs(1)
    );
    assert_eq!(
        template.function("OtherFunction").unwrap().memory_mb,
        128,
        "SAM's default MemorySize"
    );
    let refused = load(&[("Greeting", "hey")]).unwrap_err();
    assert!(
        refused.contains("Greeting=hey is not one of hello, hi"),
        "{refused}"
    );
    let unknown = load(&[("Nope", "1")]).unwrap_err();
    assert!(unknown.contains("Nope"), "{unknown}");
}

#[tokio::test]
async fn routes_are_chosen_as_api_gateway_chooses_them() {
    let e = emulate().await;
    let c = client();
    let call = |method: reqwest::Method, path: &str| c.request(method, format!("{}{path}", e.url));
    // The event `method path` gave the function it reached, which must be `function`
    // (`why`).
    let routed = |method, path, function: &'static str, why: &'static str| {
        let request = call(method, path);
        async move {
            let (_, answer) = echo(request).await;
            assert_eq!(answer["function"], function, "{why}");
            answer["event"].clone()
        }
    };
    use reqwest::Method;
    let literal = "a literal segment beats {id}";
    let special = routed(Method::GET, "/items/special", "OtherFunction", literal).await;
    assert_eq!(special["routeKey"], "GET /items/special");
    let get = "GET beats ANY on the same path";
    let item = routed(Method::GET, "/items/5", "FakeFunction", get).await;
    assert_eq!(item["pathParameters"], json!({"id": "5"}));
    let any = "ANY takes the other methods";
    let any = routed(Method::POST, "/items/5", "OtherFunction", any).await;
    assert_eq!(any["routeKey"], "ANY /items/{id}");
    let (_, files) = echo(call(reqwest::Method::GET, "/files/a/b%2Fc/d")).await;
    assert_eq!(files["event"]["routeKey"], "GET /files/{path+}");
    assert_eq!(files["event"]["pathParameters"], json!({"path": "a/b/c/d"}));

    for (method, path) in [
        (reqwest::Method::GET, "/nope/deeper"),
        (reqwest::Method::GET, "/echo/"),
        (reqwest::Method::GET, "/files/"),
        (reqwest::Method::POST, "/files/a"),
        (reqwest::Method::GET, "/ECHO/x/y"),
    ] {
        let response = call(method.clone(), path).send().await.unwrap();
        assert_gateway_error(response, 404, "Not Found").await;
    }
}

#[tokio::test]
async fn the_functions_answers_map_back_as_format_2_says() {
    let e = emulate().await;
    let c = client();
    let bare = c.get(format!("{}/bare", e.url)).send().await.unwrap();
    assert_eq!(bare.status(), 200);
    assert_eq!(bare.headers()["content-type"], "application/json");
    assert_eq!(json_of(bare).await, json!({"hello": "world"}));

    let string = c.get(format!("{}/string", e.url)).send().await.unwrap();
    assert_eq!(string.status(), 200);
    assert_eq!(string.text().await.unwrap(), "just text");

    let cookies = c.get(format!("{}/cookies", e.url)).send().await.unwrap();
    assert_eq!(cookies.status(), 201);
    assert_eq!(cookies.headers()["content-type"], "text/plain");
    assert_eq!(cookies.headers()["x-a"], "1");
    let set: Vec<_> = cookies.headers().get_all("set-cookie").iter().collect();
    assert_eq!(set, ["a=1; Path=/", "b=2"]);
    assert!(
        cookies
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "the function's own CORS header is dropped"
    );
    assert_eq!(cookies.bytes().await.unwrap().as_ref(), b"\x00binary\xff");

    let untyped = c.get(format!("{}/no-type", e.url)).send().await.unwrap();
    assert_eq!(untyped.status(), 200);
    assert_eq!(untyped.headers()["content-type"], "application/json");
    assert_eq!(untyped.text().await.unwrap(), "plain");
}

#[tokio::test]
async fn every_way_a_function_fails_is_api_gateways_500_and_crashed_instances_are_replaced() {
    let e = emulate().await;
    let c = client();
    let mut current = pid(&e, "").await;

    let get = |path: &str| c.get(format!("{}{path}", e.url)).send();
    for path in ["/error", "/malformed", "/bad-status", "/big"] {
        let response = get(path).await.unwrap();
        assert_gateway_error(response, 500, "Internal Server Error").await;
        assert_eq!(
            pid(&e, "").await,
            current,
            "{path}: the process lives on, as in Lambda"
        );
    }
    for path in ["/crash", "/sleep"] {
        let started = Instant::now();
        let response = get(path).await.unwrap();
        assert_gateway_error(response, 500, "Internal Server Error").await;
        if path == "/sleep" {
            let took = started.elapsed();
            assert!(
                took >= Duration::from_secs(2) && took < Duration::from_secs(10),
                "{took:?}"
            );
        }
        let replaced = pid(&e, "").await;
        assert_ne!(
            replaced, current,
            "{path}: a fresh instance replaces the dead one"
        );
        assert_eq!(pid(&e, "").await, replaced, "and is reused in turn");
        current = replaced;
    }
    let broken = get("/broken").await.unwrap();
    assert_gateway_error(broken, 500, "Internal Server Error").await;
    assert_eq!(e.api.function("BrokenFunction").unwrap().instances(), 0);
}

#[tokio::test]
async fn concurrent_requests_start_more_instances_and_idle_ones_are_reused() {
    let e = emulate_with(3, None).await;
    let pids: HashSet<u64> = pids_at_once(&e, 3, "?sleep=1.5")
        .await
        .into_iter()
        .collect();
    assert_eq!(pids.len(), 3, "one process per concurrent request");
    assert_eq!(e.api.function("FakeFunction").unwrap().instances(), 3);
    for _ in 0..5 {
        assert!(
            pids.contains(&pid(&e, "").await),
            "an idle instance is reused"
        );
    }
    assert_eq!(e.api.function("FakeFunction").unwrap().instances(), 3);

    // All three busy: Lambda refuses a fourth (its concurrency is used up).
    let busy = pids_at_once(&e, 3, "?sleep=1.5");
    let fourth = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        client().get(format!("{}/pid", e.url)).send().await.unwrap()
    };
    let (busy, refused) = tokio::join!(busy, fourth);
    assert_eq!(busy.len(), 3);
    assert_gateway_error(refused, 500, "Internal Server Error").await;
}

#[tokio::test]
async fn payloads_over_the_limits_get_api_gateways_answers() {
    let e = emulate().await;
    let c = client();
    let too_big = c
        .post(format!("{}/echo", e.url))
        .header("content-type", "text/plain")
        .body(vec![b'x'; 10 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_gateway_error(too_big, 413, "Request Entity Too Large").await;

    // Under API Gateway's 10 MB, over Lambda's 6 MB: Lambda refuses the invocation.
    let over_lambda = c
        .post(format!("{}/echo", e.url))
        .header("content-type", "text/plain")
        .body(vec![b'x'; 7 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_gateway_error(over_lambda, 500, "Internal Server Error").await;
}

#[tokio::test]
async fn cors_comes_from_the_template_and_preflights_never_reach_a_function() {
    let e = emulate().await;
    let c = client();
    let preflight = |origin: &str| {
        c.request(reqwest::Method::OPTIONS, format!("{}/cookies", e.url))
            .header("origin", origin.to_owned())
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("http://also.example").await.unwrap();
    assert_eq!(allowed.status(), 204);
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], "http://also.example");
    assert_eq!(h["access-control-allow-methods"], "GET,POST");
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization,content-type"
    );
    assert_eq!(h["access-control-max-age"], "60");
    assert!(allowed.bytes().await.unwrap().is_empty());

    let other = preflight("http://evil.example").await.unwrap();
    assert_eq!(other.status(), 204);
    assert!(
        !other
            .headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-"))
    );

    // A preflight on a path no route has is still answered: API Gateway answers it.
    let unrouted = c
        .request(reqwest::Method::OPTIONS, format!("{}/no/such/route", e.url))
        .header("origin", "http://allowed.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(unrouted.status(), 204);

    let actual = c
        .get(format!("{}/cookies", e.url))
        .header("origin", "http://allowed.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        actual.headers()["access-control-allow-origin"],
        "http://allowed.example"
    );
    assert_eq!(actual.headers()["access-control-expose-headers"], "x-a");
    // An OPTIONS without Access-Control-Request-Method is no preflight: it is routed.
    let plain = c
        .request(reqwest::Method::OPTIONS, format!("{}/echo", e.url))
        .header("origin", "http://allowed.example")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(
        json_of(plain).await["event"]["requestContext"]["http"]["method"],
        "OPTIONS"
    );
}

#[tokio::test]
async fn over_the_stages_throttling_limits_is_a_429() {
    let e = emulate_with(3, Some((2, 1))).await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = c.get(format!("{}/bare", e.url)).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(
                json_of(response).await,
                json!({"message": "Too Many Requests"})
            );
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
}

#[test]
fn the_repos_template_reads_as_deployed() {
    let locals = Locals {
        parameters: BTreeMap::from([("BcryptCost".to_owned(), "10".to_owned())]),
        stack_name: "local".into(),
        secret: SECRET.into(),
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template = Template::load(&path, &locals).expect("template.yaml loads");
    let route = |key: &str| {
        template
            .routes
            .iter()
            .find(|r| r.key() == key)
            .map(|r| r.function.as_str())
    };
    assert_eq!(route("POST /api/login"), Some("AuthFunction"));
    assert_eq!(route("ANY /api/register"), Some("AuthFunction"));
    assert_eq!(route("PUT /api/users/{id}"), Some("UsersFunction"));
    assert_eq!(route("GET /api/sessions"), Some("AuthFunction"));
    assert_eq!(route("DELETE /api/sessions/{id}"), Some("AuthFunction"));
    assert_eq!(route("ANY /api/sessions/{id}"), Some("AuthFunction"));
    assert_eq!(route("POST /api/password"), Some("AuthFunction"));
    assert_eq!(route("DELETE /api/account"), Some("AuthFunction"));
    assert_eq!(route("GET /.well-known/jwks.json"), Some("AuthFunction"));
    assert_eq!(route("ANY /.well-known/jwks.json"), Some("AuthFunction"));
    assert_eq!(
        route("GET /.well-known/openid-configuration"),
        Some("AuthFunction")
    );
    assert_eq!(
        route("ANY /.well-known/openid-configuration"),
        Some("AuthFunction")
    );
    assert_eq!(route("GET /"), Some("GatewayFunction"));
    assert_eq!(route("$default"), Some("GatewayFunction"));
    let cors = template
        .cors
        .as_ref()
        .expect("the API has a CORS configuration");
    assert_eq!(cors.allow_origins, ["*"]);
    assert!(!cors.allow_credentials);
    assert_eq!(template.throttle, Some((100, 50)));

    let auth = template.function("AuthFunction").unwrap();
    assert_eq!(
        auth.environment["JWT_SIGNING_KEY"], SECRET,
        "auth's Ed25519 key material, from the stack's one secret"
    );
    assert!(
        !auth.environment.contains_key("JWT_SECRET"),
        "EdDSA, not HS256"
    );
    assert_eq!(auth.environment["JWT_ISSUER"], "serverless-auth");
    assert_eq!(auth.environment["JWT_AUDIENCE"], "serverless-auth-api");
    assert_eq!(auth.environment["ACCOUNTS_TABLE"], "local-AccountsTable");
    assert_eq!(
        auth.environment["PROFILES_TABLE"], "local-ProfilesTable",
        "auth deletes the profile of an account it deletes"
    );
    assert_eq!(auth.environment["BCRYPT_COST"], "10");
    assert_eq!(
        auth.environment["RUST_LOG"], "info",
        "Globals' variables merged in"
    );
    assert_eq!(auth.log_format.as_deref(), Some("JSON"));
    assert_eq!(
        (auth.timeout, auth.memory_mb),
        (Duration::from_secs(10), 1769)
    );
    let users = template.function("UsersFunction").unwrap();
    for unset in ["JWT_SECRET", "JWT_SIGNING_KEY"] {
        assert!(
            !users.environment.contains_key(unset),
            "users verifies with auth's published public keys: {unset}"
        );
    }
    assert!(
        !users.environment.values().any(|v| v == SECRET),
        "the secret reaches auth only"
    );
    assert_eq!(users.environment["JWT_ISSUER"], "serverless-auth");
    assert_eq!(users.environment["JWT_AUDIENCE"], "serverless-auth-api");
    let gateway = template.function("GatewayFunction").unwrap();
    for unset in [
        "AUTH_SERVICE_URL",
        "USER_SERVICE_URL",
        "JWT_SECRET",
        "JWT_SIGNING_KEY",
    ] {
        assert!(!gateway.environment.contains_key(unset), "{unset}");
    }
    let too_cheap = Template::load(
        &path,
        &Locals {
            parameters: BTreeMap::from([("BcryptCost".to_owned(), "4".to_owned())]),
            ..locals
        },
    )
    .unwrap_err();
    assert!(
        too_cheap
            .to_string()
            .contains("BcryptCost=4 is outside its MinValue 10"),
        "{too_cheap}"
    );
}

#[tokio::test]
async fn an_instance_that_died_while_idle_is_replaced_not_invoked() {
    let e = emulate().await;
    let before = pid(&e, "").await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &before.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Let the emulator see the exit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = client().get(format!("{}/pid", e.url)).send().await.unwrap();
    assert_eq!(after.status(), 200, "a dead idle instance is not invoked");
    let after = json_of(after).await["pid"].as_u64().unwrap();
    assert_ne!(after, before);
    assert_eq!(e.api.function("FakeFunction").unwrap().instances(), 1);
}
