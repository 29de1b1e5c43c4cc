//! SES under emulation. The functions call moto's SES (`SES_ENDPOINT`, set beside
//! `DYNAMODB_ENDPOINT`), with the template's `MailFrom` verified there at start
//! ([`crate::setup`]) and each function's SES grant enforced
//! (`scripts/emulator/moto_serial.py --iam`). What was sent is read as LocalStack
//! serves it on its edge port, and the local stack on its gateway's:
//! `GET /_aws/ses` (`?to=`, `?email=`, `?id=`) and `DELETE /_aws/ses`. moto answers
//! those itself (`moto_serial.py`); the emulated API answers them too, on its own
//! port, by asking moto ([`Mailbox`]), so a client reads the mails at
//! `<API>/_aws/ses` under both local setups. That path is the emulator's, not API
//! Gateway's: the deployed API has no such route (there, `$default` would answer it).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::routing::{MethodRouter, any};

/// Where LocalStack serves the mails SES sent.
pub const MAILBOX_PATH: &str = "/_aws/ses";

/// The mailbox of the SES at an endpoint (moto's), asked on every request.
#[derive(Debug, Clone)]
pub struct Mailbox {
    endpoint: String,
    client: reqwest::Client,
}

impl Mailbox {
    /// The mailbox of the SES at `endpoint` (its base URL).
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// Where the mails are read: `<endpoint>/_aws/ses`.
    pub fn url(&self) -> String {
        format!("{}{MAILBOX_PATH}", self.endpoint)
    }

    /// The route answering [`MAILBOX_PATH`] with this mailbox, any method.
    pub fn route<S: Clone + Send + Sync + 'static>(self) -> MethodRouter<S> {
        any(forward).with_state(self)
    }
}

/// The request's method and query sent on to the mailbox; its status, content type and
/// body sent back. 502 when it does not answer.
async fn forward(State(mailbox): State<Mailbox>, request: Request<Body>) -> Response<Body> {
    let method = request.method().clone();
    let mut url = mailbox.url();
    if let Some(query) = request.uri().query() {
        url = format!("{url}?{query}");
    }
    let answer = async {
        let response = mailbox
            .client
            .request(method.clone(), &url)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        Ok::<_, reqwest::Error>((status, content_type, response.bytes().await?))
    };
    match answer.await {
        Ok((status, content_type, body)) => {
            tracing::info!(target: "emulate", "{method} {MAILBOX_PATH} → SES mailbox {}", status.as_u16());
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            if let Some(content_type) = content_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
            }
            response
        }
        Err(error) => {
            tracing::warn!(target: "emulate", "{method} {MAILBOX_PATH}: the SES at {url} did not answer: {error}");
            let body = serde_json::json!({
                "message": format!("the emulated SES ({}) did not answer", mailbox.endpoint)
            });
            let mut response = Response::new(Body::from(Bytes::from(body.to_string())));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::Method;
    use std::sync::{Arc, Mutex};

    /// A stand-in for moto's mailbox that records what it was asked.
    async fn fake_moto() -> (String, Arc<Mutex<Vec<String>>>) {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let record = asked.clone();
        let app = Router::new().route(
            MAILBOX_PATH,
            any(move |request: Request<Body>| {
                let record = record.clone();
                async move {
                    let line = format!("{} {}", request.method(), request.uri());
                    record.lock().unwrap().push(line);
                    if request.method() == Method::DELETE {
                        return Response::builder().status(204).body(Body::empty()).unwrap();
                    }
                    Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(r#"{"messages":[]}"#))
                        .unwrap()
                }
            }),
        );
        (spawn(app).await, asked)
    }

    /// `app` served on a free port of 127.0.0.1; its base URL.
    async fn spawn(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// An API answering `/_aws/ses` from `mailbox`; its base URL.
    async fn serve(mailbox: Mailbox) -> String {
        spawn(Router::new().route(MAILBOX_PATH, mailbox.route())).await
    }

    #[tokio::test]
    async fn reads_and_deletes_go_to_the_mailbox_with_their_query() {
        let (moto, asked) = fake_moto().await;
        let api = serve(Mailbox::new(&format!("{moto}/"))).await;
        let client = reqwest::Client::new();

        let read = client
            .get(format!("{api}{MAILBOX_PATH}?to=alice%40example.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
        assert_eq!(read.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(read.text().await.unwrap(), r#"{"messages":[]}"#);

        let deleted = client
            .delete(format!("{api}{MAILBOX_PATH}"))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        assert_eq!(
            *asked.lock().unwrap(),
            ["GET /_aws/ses?to=alice%40example.com", "DELETE /_aws/ses"]
        );
    }

    #[tokio::test]
    async fn a_mailbox_that_does_not_answer_is_a_502() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let api = serve(Mailbox::new(&endpoint)).await;
        let answer = reqwest::get(format!("{api}{MAILBOX_PATH}")).await.unwrap();
        assert_eq!(answer.status(), 502);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(
            body["message"],
            format!("the emulated SES ({endpoint}) did not answer")
        );
    }
}
