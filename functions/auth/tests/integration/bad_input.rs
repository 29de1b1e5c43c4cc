//! Bad input, table-driven: every case is a 4xx in the spec's error shape.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use testkit::*;

use crate::support::*;

struct Case {
    name: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
}

fn case(
    name: &'static str,
    path: &'static str,
    body: impl Into<Vec<u8>>,
    status: StatusCode,
) -> Case {
    Case {
        name,
        path,
        content_type: Some("application/json"),
        body: body.into(),
        status,
    }
}

/// A case refused with 400.
fn bad(name: &'static str, path: &'static str, body: impl Into<Vec<u8>>) -> Case {
    case(name, path, body, StatusCode::BAD_REQUEST)
}

/// A registration refused with 400 for one of its values.
fn bad_registration(name: &'static str, username: &str, email: &str, password: &str) -> Case {
    let body = json!({"username": username, "email": email, "password": password});
    bad(name, "/register", body.to_string())
}

const EMAIL: &str = "j@example.com";
const PASSWORD: &str = "securePassword123";

#[tokio::test]
async fn every_bad_input_gets_a_4xx_json_error() {
    let huge = format!(
        r#"{{"username":"{}","password":"x"}}"#,
        "a".repeat(70 * 1024)
    );
    let cases = vec![
        bad("malformed JSON", "/register", r#"{"username": "a""#),
        bad(
            "trailing garbage",
            "/login",
            r#"{"username":"a","password":"b"} x"#,
        ),
        bad("empty body", "/register", ""),
        bad("whitespace body", "/login", "   \n"),
        bad(
            "missing field",
            "/register",
            r#"{"username":"john_doe","email":"j@example.com"}"#,
        ),
        bad(
            "wrongly typed field",
            "/login",
            r#"{"username":5,"password":"securePassword123"}"#,
        ),
        bad("null field", "/validate", r#"{"token":null}"#),
        bad("array instead of object", "/register", "[1,2,3]"),
        bad("string instead of object", "/login", r#""hello""#),
        bad("number instead of object", "/validate", "42"),
        bad(
            "invalid UTF-8",
            "/login",
            vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'],
        ),
        case(
            "body over 64 KiB",
            "/login",
            huge,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        bad_registration("over-long username", &"a".repeat(33), EMAIL, PASSWORD),
        bad_registration("short username", "ab", EMAIL, PASSWORD),
        bad_registration("username with a space", "john doe", EMAIL, PASSWORD),
        bad_registration("invalid email", "john_doe", "not-an-email", PASSWORD),
        bad_registration(
            "email with a display name",
            "john_doe",
            "John <j@example.com>",
            PASSWORD,
        ),
        bad_registration("empty password at registration", "john_doe", EMAIL, ""),
        bad_registration("seven-character password", "john_doe", EMAIL, "1234567"),
        bad_registration(
            "100-byte password at registration",
            "john_doe",
            EMAIL,
            &"p".repeat(100),
        ),
        bad(
            "100-byte password at login",
            "/login",
            json!({"username": "john_doe", "password": "p".repeat(100)}).to_string(),
        ),
        bad(
            "empty password at login",
            "/login",
            r#"{"username":"john_doe","password":""}"#,
        ),
        Case {
            name: "text/plain body",
            path: "/login",
            content_type: Some("text/plain"),
            body: b"hi".to_vec(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        },
        Case {
            name: "form body",
            path: "/register",
            content_type: Some("application/x-www-form-urlencoded"),
            body: b"username=a".to_vec(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        },
    ];
    let app = app();
    for case in cases {
        let mut request = Request::post(case.path);
        if let Some(ct) = case.content_type {
            request = request.header("content-type", ct);
        }
        let Reply { status, body, .. } =
            send(&app, request.body(Body::from(case.body)).unwrap()).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(body["status"], case.status.as_str(), "{}", case.name);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{}: a message explains the error",
            case.name
        );
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "{}: only status and message",
            case.name
        );
    }
}

#[tokio::test]
async fn a_refused_registration_stores_nothing() {
    let app = app();
    let Reply { status, .. } = register(&app, "john_doe", "j@example.com", "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let Reply { status, .. } =
        register(&app, "john_doe", "j@example.com", "securePassword123").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the refused attempt claimed neither name nor email"
    );
}

#[tokio::test]
async fn a_72_byte_password_works_and_is_not_truncated() {
    let app = app();
    let password = "p".repeat(72);
    assert_eq!(
        register(&app, "john_doe", "j@example.com", &password)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        login(&app, "john_doe", &password).await.status,
        StatusCode::OK
    );
    let Reply { status, .. } = login(&app, "john_doe", &format!("{password}x")).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a 73rd byte is refused, not ignored"
    );
}

/// bcrypt stops at a NUL character, so a password with one would match every password
/// it starts with: registration and a password change refuse it with 400, and a login
/// with one is refused with the same 400 as any attempt that could not be checked
/// untruncated (`Password::parse_attempt`), before it is counted or checked.
#[tokio::test]
async fn a_password_with_a_nul_character_is_refused() {
    let app = app();
    let nul = error(400, "Password must not contain NUL characters");
    let prefix = "B".repeat(20);
    let with_nul = format!("{prefix}\0");
    let reply = register(&app, "john_doe", "j@example.com", &with_nul).await;
    assert_eq!(
        (reply.status, reply.body),
        (StatusCode::BAD_REQUEST, nul.clone())
    );
    assert_eq!(
        register(&app, "john_doe", "j@example.com", &prefix)
            .await
            .status,
        StatusCode::OK
    );
    for attempt in [with_nul.clone(), format!("{prefix}\0anything")] {
        let reply = login(&app, "john_doe", &attempt).await;
        assert_eq!(
            (reply.status, reply.body),
            (StatusCode::BAD_REQUEST, nul.clone()),
            "never the account of {prefix:?}"
        );
    }
    let session = login(&app, "john_doe", &prefix).await;
    assert_eq!(session.status, StatusCode::OK);
    let bearer = format!("Bearer {}", session.body["token"].as_str().unwrap());
    let change = json!({"current_password": prefix, "new_password": format!("new{prefix}\0x")});
    let reply = send(
        &app,
        Request::post("/password")
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body(Body::from(change.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!((reply.status, reply.body), (StatusCode::BAD_REQUEST, nul));
}
