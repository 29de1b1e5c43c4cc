//! The OpenAPI document against the routers: exactly the routes they serve through the
//! gateway, each served by a real stack, every other method on a path a 405.

use std::collections::BTreeSet;

use serde_json::Value;
use testkit::http::{client, read};
use testkit::{PROBED_METHODS, concrete_path, is_routing_refusal};

use crate::support::stack;

type Operations = BTreeSet<(String, String)>;

const OPERATION_KEYS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::from_str(gateway::OPENAPI).expect("openapi.json is JSON")
}

/// (METHOD, path) of every operation in the document.
fn documented() -> Operations {
    let doc = document();
    let paths = doc["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            OPERATION_KEYS
                .iter()
                .filter(|key| item.get(**key).is_some())
                .map(|key| (key.to_ascii_uppercase(), path.clone()))
        })
        .collect()
}

/// (METHOD, path) of every route the routers list, as a client of the gateway sees
/// them: the gateway's own, and auth's and users' under `/api` (their health checks at
/// `/` are not reachable through the gateway, whose `/api` is its own health), except
/// `/.well-known/*`, documented at the root where RFC 8615 puts them.
fn served() -> Operations {
    let own = gateway::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()));
    let forwarded = auth::ROUTES
        .iter()
        .chain(users::ROUTES)
        .filter(|(_, path)| *path != "/")
        .map(|(m, p)| {
            let documented = if p.starts_with("/.well-known/") {
                p.to_string()
            } else {
                format!("/api{p}")
            };
            (m.to_string(), documented)
        });
    own.chain(forwarded).collect()
}

fn paths_of(routes: &[(&str, &str)]) -> Vec<String> {
    let set: BTreeSet<String> = routes
        .iter()
        .filter(|(_, path)| *path != "/")
        .map(|(_, path)| path.to_string())
        .collect();
    set.into_iter().collect()
}

fn sorted(paths: &[&str]) -> Vec<String> {
    let set: BTreeSet<String> = paths.iter().map(|p| p.to_string()).collect();
    set.into_iter().collect()
}

#[test]
fn the_document_lists_exactly_the_routes_the_routers_serve() {
    let documented = documented();
    let served = served();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not documented: {undocumented:?}; documented but not served: {unserved:?}"
    );
}

#[test]
fn the_gateway_forwards_exactly_the_paths_auth_and_users_serve() {
    assert_eq!(sorted(gateway::AUTH_PATHS), paths_of(auth::ROUTES));
    assert_eq!(sorted(gateway::USERS_PATHS), paths_of(users::ROUTES));
}

#[test]
fn every_operation_has_an_id_and_documents_its_success() {
    let doc = document();
    for (method, path) in documented() {
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        assert!(
            op["operationId"].is_string(),
            "{method} {path}: no operationId"
        );
        let success = ["200", "202"]
            .iter()
            .find(|code| op["responses"][**code].is_object())
            .unwrap_or_else(|| panic!("{method} {path}: no 200 or 202 answer"));
        assert!(
            op["responses"][*success]["content"]["application/json"].is_object(),
            "{method} {path}: no JSON {success} answer"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_through_the_gateway_and_no_other_method_is() {
    let stack = stack(&[]).await;
    let gw = stack.gateway_url();
    let documented = documented();
    let paths: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    let mut wrong = Vec::new();
    for path in paths {
        for method in PROBED_METHODS {
            let listed = documented.contains(&(method.to_owned(), path.clone()));
            let uri = concrete_path(path);
            let response = client()
                .request(method.parse().unwrap(), format!("{gw}{uri}"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let (status, _, body) = read(response).await;
            if listed && is_routing_refusal(status, &body) {
                wrong.push(format!(
                    "{method} {uri} is documented but answered {status} {body}"
                ));
            }
            if !listed && (status != 405 || body["status"] != "405") {
                wrong.push(format!(
                    "{method} {uri} is not documented but answered {status} {body}"
                ));
            }
        }
    }
    stack.stop().await;
    assert!(wrong.is_empty(), "{wrong:#?}");
}
