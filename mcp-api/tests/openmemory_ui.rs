//! OpenMemory's web UI works unchanged: the requests its hooks send (recorded in
//! `tests/fixtures/openmemory_ui_requests.json`, with the upstream commit and file of each)
//! are replayed through the real stack (`BearerAuthLayer<AccessClaims>`, `RestApi`,
//! `SqliteStore`) with a valid token. Each must answer 2xx with every field the UI reads,
//! and the UI's `user_id` must never choose whose memories are touched.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "common/rest_common.rs"]
mod rest_common;

use std::collections::BTreeMap;

use http::Method;
use serde_json::Value;

use rest_common::{ALICE, APP_A, Api, BOB, alice, request};

const FIXTURES: &str = include_str!("fixtures/openmemory_ui_requests.json");

/// The UI's user id: deliberately another user's subject, which must change nothing.
const UI_USER_ID: &str = BOB;

fn fixtures() -> Vec<Value> {
    let document: Value = serde_json::from_str(FIXTURES).unwrap();
    assert_eq!(
        document["upstream"]["commit"].as_str().map(str::len),
        Some(40),
        "fixtures name the upstream commit"
    );
    document["requests"].as_array().unwrap().clone()
}

/// Replaces `{name}` placeholders in every string of `value`.
fn substitute(value: &Value, vars: &BTreeMap<String, String>) -> Value {
    match value {
        Value::String(text) => Value::String(substitute_str(text, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn substitute_str(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut text = text.to_owned();
    for (name, value) in vars {
        let encoded: String = url_encode(value);
        // Placeholders in a query string are percent-encoded, as the browser would.
        let (path, query) = text.split_once('?').unwrap_or((&text, ""));
        let path = path.replace(&format!("{{{name}}}"), value);
        let query = query.replace(&format!("{{{name}}}"), &encoded);
        text = if query.is_empty() && !text.contains('?') {
            path
        } else {
            format!("{path}?{query}")
        };
    }
    text
}

fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Every value at `path` (`items[].content`: the `content` of every item of `items`).
fn values_at<'v>(value: &'v Value, path: &str) -> Vec<&'v Value> {
    let mut current = vec![value];
    for segment in path.split('.') {
        let (key, each) = match segment.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (segment, false),
        };
        let mut next = Vec::new();
        for node in current {
            let Some(child) = node.get(key) else {
                return Vec::new();
            };
            if each {
                next.extend(
                    child
                        .as_array()
                        .map(|items| items.iter())
                        .into_iter()
                        .flatten(),
                );
            } else {
                next.push(child);
            }
        }
        current = next;
    }
    current
}

#[tokio::test]
async fn openmemory_ui_requests_are_answered_with_the_fields_the_ui_reads() {
    let api = Api::new();
    // Another user's memory, which no replayed request may see or change.
    let others = api.create(&rest_common::bob(), "bob's secret", &[]).await;

    let mut vars = BTreeMap::from([
        ("user_id".to_owned(), UI_USER_ID.to_owned()),
        ("app".to_owned(), APP_A.to_owned()),
    ]);
    let requests = fixtures();
    assert!(requests.len() >= 10);
    for fixture in &requests {
        let name = fixture["name"].as_str().unwrap();
        let method = Method::from_bytes(fixture["method"].as_str().unwrap().as_bytes()).unwrap();
        let path = substitute_str(fixture["path"].as_str().unwrap(), &vars);
        let body = fixture.get("body").map(|body| substitute(body, &vars));
        assert!(
            !path.contains('{'),
            "{name}: unfilled placeholder in {path}"
        );
        let reply = api
            .send(request(method, &path, Some(&alice()), body.as_ref()))
            .await;
        assert!(
            reply.status.is_success(),
            "{name}: {} {:#}",
            reply.status,
            reply.json
        );
        for read in fixture["reads"].as_array().unwrap() {
            let read = read.as_str().unwrap();
            let found = values_at(&reply.json, read);
            assert!(
                !found.is_empty(),
                "{name}: the UI reads `{read}`: {:#}",
                reply.json
            );
            assert!(
                found.iter().all(|v| !v.is_null()),
                "{name}: `{read}` is null"
            );
        }
        if let Some(captures) = fixture.get("capture").and_then(Value::as_object) {
            for (var, field) in captures {
                let value = reply.json[field.as_str().unwrap()].as_str().unwrap();
                vars.insert(var.clone(), value.to_owned());
            }
        }
        api.advance_seconds(1);
    }

    // The UI's user id chose nothing: Alice (the token's subject) wrote, changed and
    // deleted her memory; Bob's memory is as it was.
    assert!(api.memories_of(ALICE).await.is_empty());
    let bobs = api.memories_of(BOB).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].id.to_string(), others["id"].as_str().unwrap());
    assert_eq!(bobs[0].text, "bob's secret");
    assert_eq!(bobs[0].state.as_str(), "active");
    assert_eq!(
        api.access_count(BOB, others["id"].as_str().unwrap()).await,
        0
    );
}

#[tokio::test]
async fn the_ui_sees_the_changes_it_makes() {
    let api = Api::new();
    let vars = BTreeMap::from([("user_id".to_owned(), UI_USER_ID.to_owned())]);
    let create = fixtures()
        .into_iter()
        .find(|f| f["name"] == "createMemory")
        .unwrap();
    let body = substitute(&create["body"], &vars);
    let created = api.post(&alice(), "/api/v1/memories/", &body).await;
    assert_eq!(created.json["content"], "I drink green tea every morning");
    assert_eq!(created.json["app_name"], APP_A);
    let id = created.json["id"].as_str().unwrap();

    let detail = api
        .get(&alice(), &format!("/api/v1/memories/{id}?user_id=x"))
        .await;
    assert_eq!(detail.json["text"], "I drink green tea every morning");
    assert_eq!(detail.json["content"], detail.json["text"]);

    let filtered = api
        .post(
            &alice(),
            "/api/v1/memories/filter",
            &serde_json::json!({"user_id": "x", "search_query": "green", "app_ids": [APP_A]}),
        )
        .await;
    assert_eq!(filtered.json["total"], 1, "{:#}", filtered.json);
    let other_app = api
        .post(
            &alice(),
            "/api/v1/memories/filter",
            &serde_json::json!({"user_id": "x", "app_ids": ["some-other-app"]}),
        )
        .await;
    assert_eq!(other_app.json["total"], 0, "{:#}", other_app.json);
}
