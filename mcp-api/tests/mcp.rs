//! The MCP service behind the real `BearerAuthLayer`, over a real `SqliteStore`: every
//! tool over Streamable HTTP with JSON and SSE answers, the 2026-07-28 stateless era, the
//! legacy HTTP+SSE transport (over `oneshot` and over real loopback sockets), every error
//! path, ChatGPT's search/fetch contract, scopes, and cross-user isolation (one test per
//! attack).
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod mcp_common;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use mcp_api::MemoryStore;
use mcp_api::http::ResponseBody;
use mcp_api::mcp::{McpConfig, ResponseFormat};
use mcp_api::store::{Access, MemoryId, Owner};
use mcp_common::{
    ACCEPT_BOTH, Answer, Harness, IO_GUARD, READ_ONLY, READ_WRITE, SseConnection, SseItem,
    body_bytes, body_of, http_exchange, json_body, parse_sse, post, read_answer, rpc,
    serve_on_loopback, token,
};
use serde_json::{Value, json};

/// The default configuration with one change.
fn config_with(change: impl FnOnce(&mut McpConfig)) -> McpConfig {
    let mut config = McpConfig::default();
    change(&mut config);
    config
}

// ---------------------------------------------------------------------------------------
// Streamable HTTP: every tool, JSON and SSE answers.
// ---------------------------------------------------------------------------------------

const TOOL_NAMES: [&str; 7] = [
    "search",
    "fetch",
    "add_memories",
    "search_memory",
    "list_memories",
    "delete_memories",
    "delete_all_memories",
];

/// initialize → tools/list → every tool, checking each result.
async fn exercise_every_tool(harness: &Harness, accept: &'static str, expect_sse: bool) {
    let mut client = harness.client("alice", READ_WRITE);
    client.accept = accept;
    let init = client.initialize("2025-06-18").await;
    assert_eq!(init.content_type == "text/event-stream", expect_sse);
    let result = &init.message["result"];
    assert_eq!(result["protocolVersion"], "2025-06-18");
    assert_eq!(
        result["capabilities"],
        json!({"tools": {"listChanged": false}})
    );
    assert_eq!(result["serverInfo"]["name"], "mcp-api");
    assert!(result["serverInfo"]["version"].is_string());
    assert!(result["serverInfo"]["title"].is_string());
    assert!(
        result["instructions"]
            .as_str()
            .unwrap()
            .contains("search_memory")
    );
    let session = init.session.expect("initialize mints a session");
    assert!(session.len() >= 32 && session.bytes().all(|b| (0x21..=0x7e).contains(&b)));

    let listed = client.request("tools/list", json!({})).await;
    assert_eq!(listed.content_type == "text/event-stream", expect_sse);
    let tools = listed.message["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, TOOL_NAMES);

    let added = client
        .call_ok(
            "add_memories",
            json!({"text": "Allergic to peanuts", "categories": ["Health"], "metadata": {"source": "chat"}}),
        )
        .await;
    assert_eq!(added["memory"], "Allergic to peanuts");
    assert_eq!(added["categories"], json!(["health"]));
    assert_eq!(added["metadata"], json!({"source": "chat"}));
    assert_eq!(added["app"], "chatgpt");
    assert_eq!(added["state"], "active");
    let id = added["id"].as_str().unwrap().to_owned();
    client
        .call_ok("add_memories", json!({"text": "Prefers green tea"}))
        .await;

    let search = client.call_ok("search", json!({"query": "peanut"})).await;
    assert_eq!(search["results"][0]["id"], id.as_str());

    let fetched = client.call_ok("fetch", json!({"id": id})).await;
    assert_eq!(fetched["text"], "Allergic to peanuts");

    let found = client
        .call_ok("search_memory", json!({"query": "tea", "limit": 5}))
        .await;
    assert_eq!(found["results"][0]["memory"], "Prefers green tea");
    assert_eq!(found["results"][0]["snippet"], "Prefers green **tea**");
    assert!(found["results"][0].get("score").is_none());

    let listed = client
        .call_ok("list_memories", json!({"page": 1, "size": 10}))
        .await;
    assert_eq!(listed["total"], 2);
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);

    let deleted = client
        .call_ok("delete_memories", json!({"memory_ids": [id]}))
        .await;
    assert_eq!(deleted, json!({"deleted": 1}));
    let deleted = client.call_ok("delete_all_memories", json!({})).await;
    assert_eq!(deleted, json!({"deleted": 1}));
    let listed = client.call_ok("list_memories", json!({})).await;
    assert_eq!(listed["total"], 0);
}

#[tokio::test]
async fn every_tool_over_streamable_http_with_json_answers() {
    let harness = Harness::new();
    exercise_every_tool(&harness, ACCEPT_BOTH, false).await;
}

#[tokio::test]
async fn every_tool_over_streamable_http_with_sse_answers() {
    let config = config_with(|config| config.response_format = ResponseFormat::Sse);
    let harness = Harness::with_config(config);
    exercise_every_tool(&harness, ACCEPT_BOTH, true).await;
}

#[tokio::test]
async fn a_client_accepting_only_sse_gets_sse_answers() {
    let harness = Harness::new();
    exercise_every_tool(&harness, "text/event-stream", true).await;
}

#[tokio::test]
async fn sse_answers_are_one_message_event_with_stream_headers() {
    let harness = Harness::new();
    let request = post("/mcp", &token("alice", READ_WRITE))
        .header("accept", "text/event-stream")
        .body(body_of(&rpc(1, "tools/list", json!({}))))
        .unwrap();
    let mut request = request;
    request
        .headers_mut()
        .insert("accept", "text/event-stream".parse().unwrap());
    let response = harness.send(request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let text = String::from_utf8(body_bytes(response).await.to_vec()).unwrap();
    let items = parse_sse(&text);
    // No version header: 2025-03-26 is assumed, which has no priming event.
    assert_eq!(items.len(), 1);
    let SseItem::Event { event, data, .. } = &items[0] else {
        panic!("not an event");
    };
    assert_eq!(event.as_deref(), Some("message"));
    let message: Value = serde_json::from_str(data).unwrap();
    assert_eq!(message["id"], 1);
}

#[tokio::test]
async fn sse_answers_start_with_a_priming_event_only_for_2025_11_25() {
    let harness = Harness::new();
    for (version, primed) in [
        ("2025-11-25", true),
        ("2025-06-18", false),
        ("2025-03-26", false),
    ] {
        let mut client = harness.client("alice", READ_WRITE);
        client.accept = "text/event-stream";
        client.initialize(version).await;
        let answer = client.request("tools/list", json!({})).await;
        assert_eq!(answer.sse.len(), if primed { 2 } else { 1 }, "{version}");
        if primed {
            let SseItem::Event { id, data, event } = &answer.sse[0] else {
                panic!("not an event");
            };
            assert!(id.as_deref().is_some_and(|id| !id.is_empty()));
            assert!(data.is_empty());
            assert_eq!(event, &None);
        }
        assert!(answer.message["result"]["tools"].is_array());
    }
}

#[tokio::test]
async fn initialize_echoes_supported_versions_and_offers_the_latest_otherwise() {
    let harness = Harness::new();
    for (requested, answered) in [
        ("2024-11-05", "2024-11-05"),
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2099-01-01", "2025-11-25"),
        ("2026-07-28", "2025-11-25"),
    ] {
        let mut client = harness.client("alice", READ_WRITE);
        let answer = client
            .request(
                "initialize",
                json!({"protocolVersion": requested, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
            )
            .await;
        assert_eq!(
            answer.message["result"]["protocolVersion"], answered,
            "{requested}"
        );
    }
    let mut client = harness.client("alice", READ_WRITE);
    let answer = client
        .request("initialize", json!({"capabilities": {}}))
        .await;
    assert_eq!(answer.message["error"]["code"], -32602);
    assert!(answer.session.is_none());
}

#[tokio::test]
async fn requests_without_a_session_are_served_statelessly() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    let listed = client.request("tools/list", json!({})).await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.message["result"]["tools"].as_array().unwrap().len(),
        7
    );
    let added = client
        .call_ok("add_memories", json!({"text": "Stateless works"}))
        .await;
    assert_eq!(added["memory"], "Stateless works");
    assert_eq!(harness.service.open_sessions(), 0);
}

#[tokio::test]
async fn ping_answers_an_empty_result() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_ONLY);
    client.initialize("2025-11-25").await;
    let answer = client.request("ping", json!({})).await;
    assert_eq!(answer.message["result"], json!({}));
}

#[tokio::test]
async fn get_on_the_mcp_endpoint_is_405_because_there_are_no_server_messages() {
    let harness = Harness::new();
    let request = Request::get("/mcp")
        .header(
            "authorization",
            format!("Bearer {}", token("alice", READ_WRITE)),
        )
        .header("accept", "text/event-stream")
        .body(Full::default())
        .unwrap();
    let response = harness.send(request).await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST, DELETE");
}

#[tokio::test]
async fn delete_ends_the_session() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    client.initialize("2025-06-18").await;
    let session = client.session.clone().unwrap();
    let response = harness.send(delete_session(&client.token, &session)).await;
    assert_eq!(response.status(), 204);
    let answer = client.request("tools/list", json!({})).await;
    assert_eq!(answer.status, 404);
    let response = harness.send(delete_session(&client.token, &session)).await;
    assert_eq!(response.status(), 404);
    let without_header = Request::delete("/mcp")
        .header("authorization", format!("Bearer {}", client.token))
        .body(Full::default())
        .unwrap();
    assert_eq!(harness.send(without_header).await.status(), 400);
}

fn delete_session(token: &str, session: &str) -> Request<Full<Bytes>> {
    Request::delete("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("mcp-session-id", session)
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn notifications_and_client_responses_are_accepted_without_a_body() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    client.initialize("2025-11-25").await;
    for message in [
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}),
        json!({"jsonrpc": "2.0", "id": "s1", "result": {}}),
        json!({"jsonrpc": "2.0", "id": "s2", "error": {"code": -1, "message": "no"}}),
    ] {
        let response = harness.send(client.build(&message)).await;
        assert_eq!(response.status(), 202, "{message}");
        assert!(body_bytes(response).await.is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// Error paths.
// ---------------------------------------------------------------------------------------

async fn post_raw(harness: &Harness, body: &'static str) -> Answer {
    let request = post("/mcp", &token("alice", READ_WRITE))
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    read_answer(harness.send(request).await).await
}

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let harness = Harness::new();
    for body in ["{", "", "{\"jsonrpc\": \"2.0\", \"id\": 1,", "\u{0}"] {
        let answer = post_raw(&harness, body).await;
        assert_eq!(answer.status, 400, "{body:?}");
        assert_eq!(answer.message["error"]["code"], -32700);
        assert!(answer.message.get("id").is_none());
    }
}

#[tokio::test]
async fn json_that_is_not_a_jsonrpc_message_is_an_invalid_request() {
    let harness = Harness::new();
    for body in [
        r#"{"hello": "world"}"#,
        r#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]"#,
        r#""ping""#,
        r#"{"jsonrpc": "2.0", "id": null, "method": "ping"}"#,
        r#"{"jsonrpc": "1.0", "id": 1, "method": "ping"}"#,
        r#"{"jsonrpc": "2.0", "id": 1, "method": ["ping"]}"#,
    ] {
        let answer = post_raw(&harness, body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.message["error"]["code"], -32600, "{body}");
    }
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_a_crash() {
    let harness = Harness::new();
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let request = post("/mcp", &token("alice", READ_WRITE))
        .body(Full::new(Bytes::from(nested)))
        .unwrap();
    let answer = read_answer(harness.send(request).await).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.message["error"]["code"], -32700);
}

#[tokio::test]
async fn unknown_method_is_method_not_found() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    client.initialize("2025-06-18").await;
    for method in [
        "resources/list",
        "prompts/get",
        "server/discover",
        "tools/destroy",
    ] {
        let answer = client.request(method, json!({})).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.message["error"]["code"], -32601, "{method}");
    }
}

#[tokio::test]
async fn unknown_tool_is_invalid_params() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    let answer = client
        .request("tools/call", json!({"name": "rm_rf", "arguments": {}}))
        .await;
    assert_eq!(answer.message["error"]["code"], -32602);
    assert!(
        answer.message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rm_rf")
    );
    let answer = client.request("tools/call", json!({"arguments": {}})).await;
    assert_eq!(answer.message["error"]["code"], -32602);
}

#[tokio::test]
async fn bad_tool_arguments_are_tool_errors() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    for (tool, arguments, expected) in [
        ("search", json!({}), "missing field `query`"),
        ("search", json!({"query": 42}), "invalid type"),
        (
            "search",
            json!({"query": "x", "extra": 1}),
            "unknown field `extra`",
        ),
        ("search", json!("peanuts"), "arguments must be an object"),
        (
            "fetch",
            json!({"id": "not-a-uuid"}),
            "id is not a memory id",
        ),
        ("add_memories", json!({"text": ["a"]}), "invalid type"),
        ("list_memories", json!({"page": -1}), "invalid value"),
        ("delete_memories", json!({"memory_ids": []}), "at least one"),
        (
            "delete_memories",
            json!({"memory_ids": ["x"]}),
            "memory_ids[0] is not a memory id",
        ),
        (
            "delete_all_memories",
            json!({"confirm": true}),
            "unknown field `confirm`",
        ),
        ("search", Value::Null, "missing field `query`"),
    ] {
        let result = client.call_tool(tool, arguments.clone()).await;
        assert_eq!(result["isError"], true, "{tool} {arguments}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(expected), "{tool} {arguments}: {text}");
        assert!(result.get("structuredContent").is_none());
    }
    // A call without `arguments` is a call with `{}`.
    let answer = client
        .request("tools/call", json!({"name": "search"}))
        .await;
    assert_eq!(answer.message["result"]["isError"], true);
}

#[tokio::test]
async fn store_input_errors_name_the_field() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    let result = client
        .call_tool("add_memories", json!({"text": "x".repeat(20_000)}))
        .await;
    assert_eq!(result["isError"], true);
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("invalid text:"), "{text}");
    let result = client
        .call_tool("add_memories", json!({"text": "   "}))
        .await;
    assert_eq!(result["isError"], true);
    let result = client
        .call_tool("search_memory", json!({"query": "x", "limit": 0}))
        .await;
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
}

#[tokio::test]
async fn unknown_session_is_404() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    client.session = Some("0123456789abcdef0123456789abcdef012345".to_owned());
    let answer = client.request("tools/list", json!({})).await;
    assert_eq!(answer.status, 404);
    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        harness.send(client.build(&notification)).await.status(),
        404
    );
}

#[tokio::test]
async fn attack_session_hijack_another_subject_posting_into_a_session_gets_404() {
    let harness = Harness::new();
    let mut alice = harness.client("alice", READ_WRITE);
    alice.initialize("2025-06-18").await;
    alice
        .call_ok("add_memories", json!({"text": "Alice's secret"}))
        .await;

    let mut mallory = harness.client("mallory", READ_WRITE);
    mallory.session.clone_from(&alice.session);
    mallory.version = Some("2025-06-18");
    let answer = mallory
        .request(
            "tools/call",
            json!({"name": "list_memories", "arguments": {}}),
        )
        .await;
    assert_eq!(answer.status, 404);
    assert!(answer.message["result"].is_null());
    // The answer is the same as for an id that never existed.
    mallory.session = Some("f".repeat(38));
    assert_eq!(mallory.request("tools/list", json!({})).await.status, 404);
    // Alice's session still works.
    assert_eq!(alice.request("tools/list", json!({})).await.status, 200);
}

#[tokio::test]
async fn attack_another_subject_deleting_a_session_gets_404_and_the_session_survives() {
    let harness = Harness::new();
    let mut alice = harness.client("alice", READ_WRITE);
    alice.initialize("2025-06-18").await;
    let session = alice.session.clone().unwrap();
    let response = harness
        .send(delete_session(&token("mallory", READ_WRITE), &session))
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(alice.request("tools/list", json!({})).await.status, 200);
    assert_eq!(harness.service.open_sessions(), 1);
}

#[tokio::test]
async fn disallowed_origin_is_403_and_allowed_origins_pass() {
    let harness = Harness::new();
    for (origin, status) in [
        ("https://evil.example", 403),
        ("null", 403),
        ("https://chatgpt.com.evil.example", 403),
        ("https://chatgpt.com", 200),
        ("https://chat.openai.com", 200),
        ("http://localhost:6274", 200),
        ("http://127.0.0.1:3000", 200),
    ] {
        let request = post("/mcp", &token("alice", READ_WRITE))
            .header("origin", origin)
            .body(body_of(&rpc(1, "tools/list", json!({}))))
            .unwrap();
        let response = harness.send(request).await;
        assert_eq!(response.status(), status, "{origin}");
        if status == 403 {
            let body = json_body(response).await;
            assert!(body.get("id").is_none());
            assert!(body["error"]["code"].is_i64());
        }
    }
    let request = Request::get("/mcp/sse")
        .header(
            "authorization",
            format!("Bearer {}", token("alice", READ_WRITE)),
        )
        .header("origin", "https://evil.example")
        .body(Full::default())
        .unwrap();
    assert_eq!(harness.send(request).await.status(), 403);
}

#[tokio::test]
async fn unsupported_protocol_version_header_is_400() {
    let harness = Harness::new();
    for version in ["2099-01-01", "latest", ""] {
        let request = post("/mcp", &token("alice", READ_WRITE))
            .header("mcp-protocol-version", version)
            .body(body_of(&rpc(1, "tools/list", json!({}))))
            .unwrap();
        let answer = read_answer(harness.send(request).await).await;
        assert_eq!(answer.status, 400, "{version:?}");
        assert_eq!(answer.message["error"]["code"], -32022);
        assert!(
            answer.message["error"]["data"]["supported"]
                .as_array()
                .unwrap()
                .contains(&json!("2025-11-25"))
        );
    }
}

#[tokio::test]
async fn body_too_large_is_413() {
    let config = config_with(|config| config.max_body_bytes = 1024);
    let harness = Harness::with_config(config);
    let text = "x".repeat(2000);
    let request = post("/mcp", &token("alice", READ_WRITE))
        .body(body_of(&rpc(
            1,
            "tools/call",
            json!({"name": "add_memories", "arguments": {"text": text}}),
        )))
        .unwrap();
    let response = harness.send(request).await;
    assert_eq!(response.status(), 413);
    let sse_post = post(
        "/mcp/sse/messages?session_id=abc",
        &token("alice", READ_WRITE),
    )
    .body(Full::new(Bytes::from(vec![b' '; 2048])))
    .unwrap();
    assert_eq!(harness.send(sse_post).await.status(), 413);
}

#[tokio::test]
async fn wrong_content_type_is_415_and_unacceptable_accept_is_406() {
    let harness = Harness::new();
    let mut request = post("/mcp", &token("alice", READ_WRITE))
        .body(body_of(&rpc(1, "tools/list", json!({}))))
        .unwrap();
    request
        .headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(harness.send(request).await.status(), 415);
    let mut request = post("/mcp", &token("alice", READ_WRITE))
        .body(body_of(&rpc(1, "tools/list", json!({}))))
        .unwrap();
    request
        .headers_mut()
        .insert("accept", "text/html".parse().unwrap());
    assert_eq!(harness.send(request).await.status(), 406);
}

#[tokio::test]
async fn attack_repeated_content_type_header_smuggling_a_non_json_body_is_415() {
    let harness = Harness::new();
    for (path, content_types) in [
        ("/mcp", ["application/json", "text/plain"]),
        ("/mcp", ["application/json", "application/json"]),
        (
            "/mcp/sse/messages?session_id=abc",
            ["application/json", "text/plain"],
        ),
    ] {
        let mut request = post(path, &token("alice", READ_WRITE))
            .body(body_of(&rpc(1, "tools/list", json!({}))))
            .unwrap();
        for content_type in content_types {
            request
                .headers_mut()
                .append("content-type", content_type.parse().unwrap());
        }
        let response = harness.send(request).await;
        assert_eq!(response.status(), 415, "{path} {content_types:?}");
        assert!(json_body(response).await["error"]["code"].is_i64());
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_get_a_401_challenge() {
    let harness = Harness::new();
    let request = Request::post("/mcp")
        .header("content-type", "application/json")
        .body(body_of(&rpc(1, "tools/list", json!({}))))
        .unwrap();
    let response = harness.send(request).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains(
        "resource_metadata=\"https://mcp.example/.well-known/oauth-protected-resource/mcp\""
    ));
    let forged = format!("{}x", token("alice", READ_WRITE));
    let request = post("/mcp", &forged)
        .body(body_of(&rpc(1, "tools/list", json!({}))))
        .unwrap();
    assert_eq!(harness.send(request).await.status(), 401);
}

#[tokio::test]
async fn a_full_session_table_closes_the_least_recently_used_session() {
    let config = config_with(|config| config.max_sessions = 2);
    let harness = Harness::with_config(config);
    let mut alice = harness.client("alice", READ_WRITE);
    alice.initialize("2025-06-18").await;
    let mut bob = harness.client("bob", READ_WRITE);
    bob.initialize("2025-06-18").await;
    assert_eq!(alice.request("ping", json!({})).await.status, 200);
    let mut carol = harness.client("carol", READ_WRITE);
    carol.initialize("2025-06-18").await;
    assert_eq!(bob.request("ping", json!({})).await.status, 404);
    assert_eq!(alice.request("ping", json!({})).await.status, 200);
    assert_eq!(carol.request("ping", json!({})).await.status, 200);
}

#[tokio::test]
async fn a_session_table_full_of_live_streams_refuses_new_sessions_with_503() {
    let config = config_with(|config| {
        config.max_sessions = 1;
        config.sse_keep_alive = None;
    });
    let harness = Harness::with_config(config);
    let (_stream, _) = open_legacy_stream(&harness, "alice").await;
    let response = harness
        .send(open_sse_request(&token("bob", READ_WRITE)))
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let mut bob = harness.client("bob", READ_WRITE);
    let answer = bob
        .request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
        )
        .await;
    assert_eq!(answer.status, 503);
    assert!(answer.session.is_none());
    // Stateless requests still work.
    assert_eq!(bob.request("tools/list", json!({})).await.status, 200);
}

#[tokio::test]
async fn sse_streams_beyond_the_caps_are_refused_without_closing_open_ones() {
    let config = config_with(|config| {
        config.max_sse_streams_per_subject = 2;
        config.max_sse_streams = 3;
        config.sse_keep_alive = None;
    });
    let harness = Harness::with_config(config);
    let (_first, first_endpoint) = open_legacy_stream(&harness, "alice").await;
    let (_second, _) = open_legacy_stream(&harness, "alice").await;
    let response = harness
        .send(open_sse_request(&token("alice", READ_WRITE)))
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "30");
    let body = json_body(response).await;
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(body["error"]["code"].is_i64(), "{body}");
    // The refusal closed nothing: alice's first stream still takes messages.
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(
        post_message(&harness, &first_endpoint, "alice", &ping).await,
        StatusCode::ACCEPTED
    );
    // Another subject gets one stream, then the server-wide cap answers 503.
    let (_bob, _) = open_legacy_stream(&harness, "bob").await;
    let response = harness
        .send(open_sse_request(&token("carol", READ_WRITE)))
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    // Streamable HTTP sessions are not streams: still available.
    let mut carol = harness.client("carol", READ_WRITE);
    carol.initialize("2025-06-18").await;
    assert_eq!(carol.request("ping", json!({})).await.status, 200);
}

#[tokio::test]
async fn a_subject_over_its_session_quota_loses_its_oldest_session() {
    let config = config_with(|config| config.max_sessions_per_subject = 2);
    let harness = Harness::with_config(config);
    let mut first = harness.client("alice", READ_WRITE);
    first.initialize("2025-06-18").await;
    let mut second = harness.client("alice", READ_WRITE);
    second.initialize("2025-06-18").await;
    let mut bob = harness.client("bob", READ_WRITE);
    bob.initialize("2025-06-18").await;
    // Touch `first`, so `second` is alice's least recently used session.
    assert_eq!(first.request("ping", json!({})).await.status, 200);
    let mut third = harness.client("alice", READ_WRITE);
    third.initialize("2025-06-18").await;
    assert_eq!(second.request("ping", json!({})).await.status, 404);
    assert_eq!(first.request("ping", json!({})).await.status, 200);
    assert_eq!(third.request("ping", json!({})).await.status, 200);
    assert_eq!(bob.request("ping", json!({})).await.status, 200);
}

#[tokio::test]
async fn other_paths_are_404() {
    let harness = Harness::new();
    for path in [
        "/mcp/other",
        "/mcp/sse/other",
        "/mcp/sse/",
        "/mcp/messages/x",
    ] {
        let request = post(path, &token("alice", READ_WRITE))
            .body(body_of(&rpc(1, "tools/list", json!({}))))
            .unwrap();
        assert_eq!(harness.send(request).await.status(), 404, "{path}");
    }
}

// ---------------------------------------------------------------------------------------
// ChatGPT's search/fetch contract and the access log.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn chatgpt_search_result_is_exactly_the_connector_contract() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    client.initialize("2025-06-18").await;
    let long = format!("Trip to Lisbon in May: {}", "detail ".repeat(40));
    let added = client.call_ok("add_memories", json!({"text": long})).await;
    client
        .call_ok(
            "add_memories",
            json!({"text": "Lisbon hotel: Alfama\nsecond line"}),
        )
        .await;

    let result = client.call_tool("search", json!({"query": "Lisbon"})).await;
    assert_eq!(result["isError"], false);
    let content = result["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    let text_json: Value = serde_json::from_str(content[0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text_json, result["structuredContent"]);

    let structured = result["structuredContent"].as_object().unwrap();
    assert_eq!(structured.keys().collect::<Vec<_>>(), ["results"]);
    let results = structured["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for hit in results {
        let mut keys: Vec<&String> = hit.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["id", "title", "url"]);
        let id = hit["id"].as_str().unwrap();
        assert!(id.parse::<MemoryId>().is_ok());
        assert_eq!(
            hit["url"],
            format!("https://mcp.example/api/v1/memories/{id}")
        );
        assert!(hit["title"].as_str().unwrap().chars().count() <= 80);
    }
    let titles: Vec<&str> = results
        .iter()
        .map(|hit| hit["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"Lisbon hotel: Alfama"));
    let long_title = results.iter().find(|hit| hit["id"] == added["id"]).unwrap()["title"]
        .as_str()
        .unwrap();
    assert!(long_title.starts_with("Trip to Lisbon in May:") && long_title.ends_with('…'));

    let empty = client.call_ok("search", json!({"query": "Tokyo"})).await;
    assert_eq!(empty, json!({"results": []}));
}

#[tokio::test]
async fn chatgpt_fetch_result_is_exactly_the_connector_contract() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    let added = client
        .call_ok(
            "add_memories",
            json!({"text": "Blood type: O negative", "categories": ["health"], "metadata": {"app": "spoofed", "source": "chat"}}),
        )
        .await;
    let id = added["id"].as_str().unwrap();
    let result = client.call_tool("fetch", json!({"id": id})).await;
    let content = result["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    let text_json: Value = serde_json::from_str(content[0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text_json, result["structuredContent"]);
    let fetched = result["structuredContent"].as_object().unwrap();
    let mut keys: Vec<&String> = fetched.keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "metadata", "text", "title", "url"]);
    assert_eq!(fetched["id"], id);
    assert_eq!(fetched["title"], "Blood type: O negative");
    assert_eq!(fetched["text"], "Blood type: O negative");
    assert_eq!(
        fetched["url"],
        format!("https://mcp.example/api/v1/memories/{id}")
    );
    let metadata = &fetched["metadata"];
    assert_eq!(metadata["source"], "chat");
    assert_eq!(metadata["categories"], json!(["health"]));
    assert_eq!(
        metadata["app"], "chatgpt",
        "server fields win over stored metadata"
    );
    assert_eq!(metadata["state"], "active");
    assert!(metadata["created_at"].is_i64());
}

#[tokio::test]
async fn search_and_fetch_are_recorded_in_the_access_log() {
    let harness = Harness::new();
    let mut client = harness.client("alice", READ_WRITE);
    let added = client
        .call_ok("add_memories", json!({"text": "Likes jazz"}))
        .await;
    let id: MemoryId = added["id"].as_str().unwrap().parse().unwrap();
    client.call_ok("search", json!({"query": "jazz"})).await;
    client.call_ok("fetch", json!({"id": id.to_string()})).await;
    client
        .call_ok("search_memory", json!({"query": "jazz"}))
        .await;
    let owner = Owner::new("alice").unwrap();
    let log = harness
        .store
        .access_log(&owner, id, 1, 10)
        .await
        .unwrap()
        .unwrap();
    let mut vias: Vec<&str> = log.items.iter().map(|entry| entry.via.as_str()).collect();
    vias.sort_unstable();
    assert_eq!(vias, ["mcp:fetch", "mcp:search", "mcp:search_memory"]);
    assert!(log.items.iter().all(|entry| entry.app == "chatgpt"));
}

// ---------------------------------------------------------------------------------------
// Isolation and scopes.
// ---------------------------------------------------------------------------------------

async fn alice_with_a_memory(harness: &Harness) -> String {
    let mut alice = harness.client("alice", READ_WRITE);
    let added = alice
        .call_ok(
            "add_memories",
            json!({"text": "Alice's bank PIN hint is zebra"}),
        )
        .await;
    added["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn attack_user_b_cannot_fetch_user_a_memory_by_id() {
    let harness = Harness::new();
    let id = alice_with_a_memory(&harness).await;
    let mut bob = harness.client("bob", READ_WRITE);
    let result = bob.call_tool("fetch", json!({"id": id})).await;
    assert_eq!(result["isError"], true);
    assert_eq!(result["content"][0]["text"], "memory not found");
    // The same answer as for an id that does not exist.
    let unknown = "01890a5d-ac96-774b-bcce-b302099a8057";
    let result = bob.call_tool("fetch", json!({"id": unknown})).await;
    assert_eq!(result["content"][0]["text"], "memory not found");
}

#[tokio::test]
async fn attack_user_b_cannot_find_user_a_memories_with_any_search_or_list() {
    let harness = Harness::new();
    alice_with_a_memory(&harness).await;
    let mut bob = harness.client("bob", READ_WRITE);
    bob.call_ok("add_memories", json!({"text": "Bob likes zebras"}))
        .await;
    let found = bob
        .call_ok("search", json!({"query": "zebra PIN bank"}))
        .await;
    assert_eq!(found["results"].as_array().unwrap().len(), 1);
    assert!(
        found["results"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Bob")
    );
    let found = bob.call_ok("search_memory", json!({"query": "PIN"})).await;
    assert_eq!(found["results"], json!([]));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .starts_with("No memory matched")
    );
    let listed = bob.call_ok("list_memories", json!({})).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["memory"], "Bob likes zebras");
}

#[tokio::test]
async fn attack_user_b_cannot_delete_user_a_memories() {
    let harness = Harness::new();
    let id = alice_with_a_memory(&harness).await;
    let mut bob = harness.client("bob", READ_WRITE);
    let deleted = bob
        .call_ok("delete_memories", json!({"memory_ids": [id]}))
        .await;
    assert_eq!(deleted, json!({"deleted": 0}));
    let deleted = bob.call_ok("delete_all_memories", json!({})).await;
    assert_eq!(deleted, json!({"deleted": 0}));
    let mut alice = harness.client("alice", READ_ONLY);
    let fetched = alice.call_ok("fetch", json!({"id": id})).await;
    assert_eq!(fetched["text"], "Alice's bank PIN hint is zebra");
}

#[tokio::test]
async fn a_read_only_token_cannot_add_or_delete() {
    let harness = Harness::new();
    let id = alice_with_a_memory(&harness).await;
    let mut reader = harness.client("alice", READ_ONLY);
    for (tool, arguments) in [
        ("add_memories", json!({"text": "sneaky"})),
        ("delete_memories", json!({"memory_ids": [id]})),
        ("delete_all_memories", json!({})),
    ] {
        let result = reader.call_tool(tool, arguments).await;
        assert_eq!(result["isError"], true, "{tool}");
        assert!(
            result["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("memories:write")
        );
        let challenge = result["_meta"]["mcp/www_authenticate"][0].as_str().unwrap();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains("error=\"insufficient_scope\""));
        assert!(challenge.contains("scope=\"memories:write\""));
        assert!(challenge.contains(
            "resource_metadata=\"https://mcp.example/.well-known/oauth-protected-resource/mcp\""
        ));
    }
    let listed = reader.call_ok("list_memories", json!({})).await;
    assert_eq!(listed["total"], 1, "nothing was added or deleted");
}

#[tokio::test]
async fn a_token_without_memory_scopes_cannot_read() {
    let harness = Harness::new();
    alice_with_a_memory(&harness).await;
    let mut client = harness.client("alice", "openid profile");
    for tool in ["search", "search_memory"] {
        let result = client.call_tool(tool, json!({"query": "zebra"})).await;
        assert_eq!(result["isError"], true);
        let challenge = result["_meta"]["mcp/www_authenticate"][0].as_str().unwrap();
        assert!(challenge.contains("scope=\"memories:read\""));
    }
    // tools/list is the same for everyone.
    let listed = client.request("tools/list", json!({})).await;
    assert_eq!(
        listed.message["result"]["tools"].as_array().unwrap().len(),
        7
    );
}

// ---------------------------------------------------------------------------------------
// 2026-07-28: the stateless era on the same endpoint.
// ---------------------------------------------------------------------------------------

const MODERN: &str = "2026-07-28";

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "modern-client", "version": "2.0.0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

fn modern_request(sub: &str, method: &str, name: Option<&str>) -> http::request::Builder {
    let mut builder = post("/mcp", &token(sub, READ_WRITE))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = name {
        builder = builder.header("mcp-name", name);
    }
    builder
}

fn modern_body(id: u64, method: &str, mut params: Value) -> Full<Bytes> {
    params["_meta"] = modern_meta();
    body_of(&rpc(id, method, params))
}

async fn send_modern(harness: &Harness, method: &str, name: Option<&str>, params: Value) -> Answer {
    let request = modern_request("alice", method, name)
        .body(modern_body(1, method, params))
        .unwrap();
    read_answer(harness.send(request).await).await
}

#[tokio::test]
async fn modern_discover_works_without_initialize() {
    let harness = Harness::new();
    let answer = send_modern(&harness, "server/discover", None, json!({})).await;
    assert_eq!(answer.status, 200);
    assert!(answer.session.is_none());
    let result = &answer.message["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["supportedVersions"][0], MODERN);
    assert!(
        result["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );
    assert_eq!(
        result["capabilities"]["tools"],
        json!({"listChanged": false})
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-api"
    );
    assert!(result["instructions"].is_string());
    assert!(result["ttlMs"].as_u64().is_some());
    assert_eq!(result["cacheScope"], "public");
}

#[tokio::test]
async fn modern_tools_list_and_call_are_stateless_and_typed() {
    let harness = Harness::new();
    let listed = send_modern(&harness, "tools/list", None, json!({})).await;
    let result = &listed.message["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["tools"].as_array().unwrap().len(), 7);
    assert!(result["ttlMs"].is_u64());
    assert_eq!(result["cacheScope"], "public");

    let added = send_modern(
        &harness,
        "tools/call",
        Some("add_memories"),
        json!({"name": "add_memories", "arguments": {"text": "Modern clients work"}}),
    )
    .await;
    assert_eq!(added.status, 200);
    assert!(added.session.is_none(), "no session ids in 2026-07-28");
    let result = &added.message["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["isError"], false);
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-api"
    );

    // A session header is ignored, even a made-up one.
    let request = modern_request("alice", "tools/call", Some("search"))
        .header("mcp-session-id", "no-such-session")
        .body(modern_body(
            2,
            "tools/call",
            json!({"name": "search", "arguments": {"query": "modern"}}),
        ))
        .unwrap();
    let found = read_answer(harness.send(request).await).await;
    assert_eq!(found.status, 200);
    assert_eq!(
        found.message["result"]["structuredContent"]["results"][0]["title"],
        "Modern clients work"
    );
    assert_eq!(harness.service.open_sessions(), 0);
}

#[tokio::test]
async fn modern_header_mismatch_is_400_with_header_mismatch_error() {
    let harness = Harness::new();
    let call = json!({"name": "search", "arguments": {"query": "x"}});
    // Mcp-Name names another tool than the body.
    let answer = send_modern(
        &harness,
        "tools/call",
        Some("delete_all_memories"),
        call.clone(),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.message["error"]["code"], -32020);
    assert_eq!(answer.message["id"], 1);
    // Mcp-Name missing.
    let answer = send_modern(&harness, "tools/call", None, call.clone()).await;
    assert_eq!(answer.message["error"]["code"], -32020);
    // Mcp-Method disagrees with the body.
    let request = modern_request("alice", "tools/list", Some("search"))
        .body(modern_body(1, "tools/call", call.clone()))
        .unwrap();
    let answer = read_answer(harness.send(request).await).await;
    assert_eq!(
        (
            answer.status.as_u16(),
            answer.message["error"]["code"].clone()
        ),
        (400, json!(-32020))
    );
    // MCP-Protocol-Version missing while _meta names 2026-07-28.
    let mut request = modern_request("alice", "tools/call", Some("search"))
        .body(modern_body(1, "tools/call", call))
        .unwrap();
    request.headers_mut().remove("mcp-protocol-version");
    let answer = read_answer(harness.send(request).await).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.message["error"]["code"], -32020);
}

#[tokio::test]
async fn modern_base64_encoded_mcp_name_is_decoded() {
    let harness = Harness::new();
    // "search" as =?base64?...?=
    let answer = send_modern(
        &harness,
        "tools/call",
        Some("=?base64?c2VhcmNo?="),
        json!({"name": "search", "arguments": {"query": "x"}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.message);
    let answer = send_modern(
        &harness,
        "tools/call",
        Some("=?base64?ZmV0Y2g=?="),
        json!({"name": "search", "arguments": {"query": "x"}}),
    )
    .await;
    assert_eq!(answer.message["error"]["code"], -32020);
}

#[tokio::test]
async fn modern_unsupported_version_is_400_with_the_supported_list() {
    let harness = Harness::new();
    let mut params = json!({});
    params["_meta"] = modern_meta();
    params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let request = post("/mcp", &token("alice", READ_WRITE))
        .header("mcp-protocol-version", "2099-01-01")
        .header("mcp-method", "server/discover")
        .body(body_of(&rpc(7, "server/discover", params)))
        .unwrap();
    let answer = read_answer(harness.send(request).await).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.message["id"], 7);
    assert_eq!(answer.message["error"]["code"], -32022);
    assert_eq!(answer.message["error"]["data"]["requested"], "2099-01-01");
    assert!(
        answer.message["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!(MODERN))
    );
}

#[tokio::test]
async fn modern_unknown_method_is_404_with_method_not_found() {
    let harness = Harness::new();
    for method in ["ping", "initialize", "resources/list"] {
        let answer = send_modern(&harness, method, None, json!({})).await;
        assert_eq!(answer.status, 404, "{method}");
        assert_eq!(answer.message["error"]["code"], -32601);
    }
    let answer = send_modern(
        &harness,
        "tools/call",
        Some("nope"),
        json!({"name": "nope", "arguments": {}}),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.message["error"]["code"], -32602);
}

#[tokio::test]
async fn modern_request_without_client_capabilities_is_400_invalid_params() {
    let harness = Harness::new();
    let request = post("/mcp", &token("alice", READ_WRITE))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/list")
        .body(body_of(&rpc(
            1,
            "tools/list",
            json!({"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}),
        )))
        .unwrap();
    let answer = read_answer(harness.send(request).await).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.message["error"]["code"], -32602);
    // The modern header without any _meta at all.
    let request = post("/mcp", &token("alice", READ_WRITE))
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/list")
        .body(body_of(&rpc(1, "tools/list", json!({}))))
        .unwrap();
    let answer = read_answer(harness.send(request).await).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.message["error"]["code"], -32602);
}

#[tokio::test]
async fn modern_get_and_delete_are_405() {
    let harness = Harness::new();
    for method in ["GET", "DELETE"] {
        let request = Request::builder()
            .method(method)
            .uri("/mcp")
            .header(
                "authorization",
                format!("Bearer {}", token("alice", READ_WRITE)),
            )
            .header("mcp-protocol-version", MODERN)
            .header("mcp-session-id", "anything")
            .body(Full::default())
            .unwrap();
        let response = harness.send(request).await;
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
    }
}

#[tokio::test]
async fn modern_answers_can_be_sse_and_errors_stay_json() {
    let config = config_with(|config| config.response_format = ResponseFormat::Sse);
    let harness = Harness::with_config(config);
    let answer = send_modern(&harness, "tools/list", None, json!({})).await;
    assert_eq!(answer.content_type, "text/event-stream");
    assert_eq!(answer.sse.len(), 1, "no priming event in 2026-07-28");
    assert_eq!(answer.message["result"]["resultType"], "complete");
    let answer = send_modern(&harness, "ping", None, json!({})).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.content_type, "application/json");
}

#[tokio::test]
async fn modern_notifications_are_accepted() {
    let harness = Harness::new();
    let request = post("/mcp", &token("alice", READ_WRITE))
        .header("mcp-protocol-version", MODERN)
        .body(body_of(
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled"}),
        ))
        .unwrap();
    assert_eq!(harness.send(request).await.status(), 202);
}

// ---------------------------------------------------------------------------------------
// Legacy HTTP+SSE (2024-11-05).
// ---------------------------------------------------------------------------------------

fn no_keep_alive() -> McpConfig {
    config_with(|config| config.sse_keep_alive = None)
}

fn open_sse_request(token: &str) -> Request<Full<Bytes>> {
    Request::get("/mcp/sse")
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream")
        .body(Full::default())
        .unwrap()
}

/// The next SSE record from an in-process stream body.
async fn next_record(body: &mut ResponseBody) -> Option<SseItem> {
    let frame = tokio::time::timeout(IO_GUARD, body.frame())
        .await
        .expect("the stream produces a frame")?;
    let data = frame.unwrap().into_data().unwrap();
    let text = String::from_utf8(data.to_vec()).unwrap();
    let mut items = parse_sse(&text);
    assert_eq!(items.len(), 1, "one record per frame: {text:?}");
    items.pop()
}

/// Opens a legacy stream in process; returns the body and the POST path.
async fn open_legacy_stream(harness: &Harness, sub: &str) -> (ResponseBody, String) {
    let response = harness
        .send(open_sse_request(&token(sub, READ_WRITE)))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut body = response.into_body();
    let Some(SseItem::Event { event, data, .. }) = next_record(&mut body).await else {
        panic!("no endpoint event");
    };
    assert_eq!(event.as_deref(), Some("endpoint"));
    let session = data
        .strip_prefix("/mcp/sse/messages?session_id=")
        .unwrap_or_else(|| panic!("the endpoint is under /mcp/sse: {data}"));
    assert!(
        session.len() >= 20 && session.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{data}"
    );
    (body, data)
}

async fn post_message(harness: &Harness, path: &str, sub: &str, message: &Value) -> StatusCode {
    let request = post(path, &token(sub, READ_WRITE))
        .body(body_of(message))
        .unwrap();
    harness.send(request).await.status()
}

#[tokio::test]
async fn legacy_sse_answers_arrive_on_the_stream() {
    let harness = Harness::with_config(no_keep_alive());
    let (mut body, endpoint) = open_legacy_stream(&harness, "alice").await;
    let init = rpc(
        1,
        "initialize",
        json!({"protocolVersion": "2024-11-05", "capabilities": {}}),
    );
    assert_eq!(post_message(&harness, &endpoint, "alice", &init).await, 202);
    let answer = next_record(&mut body).await.unwrap();
    let SseItem::Event { event, .. } = &answer else {
        panic!("not an event");
    };
    assert_eq!(event.as_deref(), Some("message"));
    assert_eq!(
        answer.data_json()["result"]["protocolVersion"],
        "2024-11-05"
    );
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        post_message(&harness, &endpoint, "alice", &initialized).await,
        202
    );
    // The TypeScript SDK's `sessionId` spelling works too.
    let ts_endpoint = endpoint.replace("session_id=", "sessionId=");
    let call = rpc(
        2,
        "tools/call",
        json!({"name": "add_memories", "arguments": {"text": "Legacy clients work"}}),
    );
    assert_eq!(
        post_message(&harness, &ts_endpoint, "alice", &call).await,
        202
    );
    let answer = next_record(&mut body).await.unwrap().data_json();
    assert_eq!(answer["id"], 2);
    assert_eq!(
        answer["result"]["structuredContent"]["memory"],
        "Legacy clients work"
    );
}

#[tokio::test]
async fn the_old_message_path_is_an_alias_of_the_new_one() {
    let harness = Harness::with_config(no_keep_alive());
    let (mut body, endpoint) = open_legacy_stream(&harness, "alice").await;
    let old = endpoint.replace("/mcp/sse/messages?", "/mcp/messages?");
    assert_ne!(old, endpoint);
    let add = rpc(
        1,
        "tools/call",
        json!({"name": "add_memories", "arguments": {"text": "posted to the old path"}}),
    );
    assert_eq!(post_message(&harness, &old, "alice", &add).await, 202);
    let answer = next_record(&mut body).await.unwrap().data_json();
    assert_eq!(answer["id"], 1);
    assert_eq!(
        answer["result"]["structuredContent"]["memory"],
        "posted to the old path"
    );
    // Both paths reach the same session: the new one answers on the same stream.
    let list = rpc(
        2,
        "tools/call",
        json!({"name": "list_memories", "arguments": {}}),
    );
    assert_eq!(post_message(&harness, &endpoint, "alice", &list).await, 202);
    let answer = next_record(&mut body).await.unwrap().data_json();
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["structuredContent"]["total"], 1);
    // The alias is bound to the subject like the new path.
    assert_eq!(post_message(&harness, &old, "mallory", &list).await, 404);
}

#[tokio::test]
async fn legacy_scope_refusals_point_at_the_metadata_under_sse() {
    let harness = Harness::with_config(no_keep_alive());
    let response = harness
        .send(open_sse_request(&token("alice", READ_ONLY)))
        .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let Some(SseItem::Event { data: endpoint, .. }) = next_record(&mut body).await else {
        panic!("no endpoint event");
    };
    let add = rpc(
        1,
        "tools/call",
        json!({"name": "add_memories", "arguments": {"text": "not allowed"}}),
    );
    let request = post(&endpoint, &token("alice", READ_ONLY))
        .body(body_of(&add))
        .unwrap();
    assert_eq!(harness.send(request).await.status(), 202);
    let answer = next_record(&mut body).await.unwrap().data_json();
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert_eq!(
        answer["result"]["_meta"]["mcp/www_authenticate"],
        json!([
            "Bearer resource_metadata=\"https://mcp.example/mcp/sse/oauth-protected-resource\", scope=\"memories:write\", error=\"insufficient_scope\""
        ])
    );
    // Reads are allowed with the read scope.
    let search = rpc(
        2,
        "tools/call",
        json!({"name": "search", "arguments": {"query": "anything"}}),
    );
    let request = post(&endpoint, &token("alice", READ_ONLY))
        .body(body_of(&search))
        .unwrap();
    assert_eq!(harness.send(request).await.status(), 202);
    let answer = next_record(&mut body).await.unwrap().data_json();
    assert_eq!(answer["id"], 2);
    assert_ne!(answer["result"]["isError"], true, "{answer}");
    // Over Streamable HTTP the same refusal names the well-known location.
    let mut client = harness.client("alice", READ_ONLY);
    let result = client
        .call_tool("add_memories", json!({"text": "not allowed"}))
        .await;
    assert_eq!(
        result["_meta"]["mcp/www_authenticate"][0].as_str().unwrap(),
        "Bearer resource_metadata=\"https://mcp.example/.well-known/oauth-protected-resource/mcp\", scope=\"memories:write\", error=\"insufficient_scope\""
    );
}

#[tokio::test]
async fn without_the_auth_layer_legacy_paths_challenge_with_the_metadata_under_sse() {
    use tower::ServiceExt as _;
    let harness = Harness::new();
    for (method, path, metadata) in [
        (
            "GET",
            "/mcp/sse",
            "https://mcp.example/mcp/sse/oauth-protected-resource",
        ),
        (
            "POST",
            "/mcp/sse/messages?session_id=x",
            "https://mcp.example/mcp/sse/oauth-protected-resource",
        ),
        (
            "POST",
            "/mcp/messages?session_id=x",
            "https://mcp.example/mcp/sse/oauth-protected-resource",
        ),
        (
            "POST",
            "/mcp",
            "https://mcp.example/.well-known/oauth-protected-resource/mcp",
        ),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = harness.service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        assert_eq!(
            response.headers()["www-authenticate"],
            format!(
                "Bearer resource_metadata=\"{metadata}\", scope=\"memories:read memories:write\""
            )
            .as_str(),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn attack_another_subject_posting_into_a_legacy_stream_gets_404() {
    let harness = Harness::with_config(no_keep_alive());
    let (mut body, endpoint) = open_legacy_stream(&harness, "alice").await;
    let call = rpc(
        1,
        "tools/call",
        json!({"name": "add_memories", "arguments": {"text": "injected by mallory"}}),
    );
    assert_eq!(
        post_message(&harness, &endpoint, "mallory", &call).await,
        404
    );
    // Nothing reached alice's stream, and nothing was stored for anyone.
    let list = rpc(
        2,
        "tools/call",
        json!({"name": "list_memories", "arguments": {}}),
    );
    assert_eq!(post_message(&harness, &endpoint, "alice", &list).await, 202);
    let answer = next_record(&mut body).await.unwrap().data_json();
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["structuredContent"]["total"], 0);
}

#[tokio::test]
async fn legacy_posts_need_a_known_session() {
    let harness = Harness::with_config(no_keep_alive());
    let ping = rpc(1, "ping", json!({}));
    for path in ["/mcp/sse/messages", "/mcp/messages"] {
        assert_eq!(post_message(&harness, path, "alice", &ping).await, 400);
        let unknown = format!("{path}?session_id=nope");
        assert_eq!(post_message(&harness, &unknown, "alice", &ping).await, 404);
    }
    // A Streamable HTTP session id is not a legacy stream.
    let mut client = harness.client("alice", READ_WRITE);
    client.initialize("2025-06-18").await;
    let path = format!("/mcp/sse/messages?session_id={}", client.session.unwrap());
    assert_eq!(post_message(&harness, &path, "alice", &ping).await, 404);
    // Bad JSON on a real stream is a 400 with a parse error.
    let (_body, endpoint) = open_legacy_stream(&harness, "alice").await;
    let request = post(&endpoint, &token("alice", READ_WRITE))
        .body(Full::new(Bytes::from_static(b"{nope")))
        .unwrap();
    let answer = read_answer(harness.send(request).await).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.message["error"]["code"], -32700);
    // Only GET opens a stream; only POST posts.
    let request = post("/mcp/sse", &token("alice", READ_WRITE))
        .body(Full::default())
        .unwrap();
    assert_eq!(harness.send(request).await.status(), 405);
}

#[tokio::test]
async fn close_streams_ends_open_legacy_streams_and_refuses_new_ones() {
    let harness = Harness::with_config(no_keep_alive());
    let (mut first, _) = open_legacy_stream(&harness, "alice").await;
    let (mut second, _) = open_legacy_stream(&harness, "bob").await;
    assert_eq!(harness.service.close_streams(), 2);
    assert!(next_record(&mut first).await.is_none());
    assert!(next_record(&mut second).await.is_none());
    assert_eq!(harness.service.open_sessions(), 0);
    let response = harness
        .send(open_sse_request(&token("alice", READ_WRITE)))
        .await;
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn dropping_a_legacy_stream_forgets_its_session() {
    let harness = Harness::with_config(no_keep_alive());
    let (body, endpoint) = open_legacy_stream(&harness, "alice").await;
    assert_eq!(harness.service.open_sessions(), 1);
    drop(body);
    assert_eq!(harness.service.open_sessions(), 0);
    let ping = rpc(1, "ping", json!({}));
    assert_eq!(post_message(&harness, &endpoint, "alice", &ping).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_flow_over_a_real_socket() {
    let config = config_with(|config| config.sse_keep_alive = Some(Duration::from_millis(50)));
    let harness = Harness::with_config(config);
    let addr = serve_on_loopback(harness.app.clone()).await;
    let alice = token("alice", READ_WRITE);

    let mut stream = SseConnection::open(addr, "/mcp/sse", &alice).await;
    assert_eq!(stream.status(), 200, "{}", stream.head);
    let head = stream.head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/event-stream"));
    assert!(head.contains("cache-control: no-cache"));
    assert!(head.contains("x-accel-buffering: no"));

    let SseItem::Event { event, data, .. } = stream.next_event().await else {
        unreachable!()
    };
    assert_eq!(event.as_deref(), Some("endpoint"));
    let endpoint = data;

    let init = rpc(
        1,
        "initialize",
        json!({"protocolVersion": "2024-11-05", "capabilities": {}}),
    );
    let (status, _) = http_exchange(addr, "POST", &endpoint, &alice, &init.to_string()).await;
    assert_eq!(status, 202);
    let answer = stream.next_event().await.data_json();
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["serverInfo"]["name"], "mcp-api");

    let list = rpc(2, "tools/list", json!({}));
    let (status, _) = http_exchange(addr, "POST", &endpoint, &alice, &list.to_string()).await;
    assert_eq!(status, 202);
    let answer = stream.next_event().await.data_json();
    assert_eq!(answer["result"]["tools"].as_array().unwrap().len(), 7);

    for (id, tool, arguments) in [
        (3, "add_memories", json!({"text": "Socket memories work"})),
        (4, "search", json!({"query": "socket"})),
    ] {
        let call = rpc(
            id,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        );
        let (status, _) = http_exchange(addr, "POST", &endpoint, &alice, &call.to_string()).await;
        assert_eq!(status, 202);
        let answer = stream.next_event().await.data_json();
        assert_eq!(answer["id"], id);
        assert_eq!(answer["result"]["isError"], false);
    }

    // With nothing to send, keep-alive comments arrive.
    let mut saw_ping = false;
    for _ in 0..100 {
        if stream.next_item().await == SseItem::Comment("ping".to_owned()) {
            saw_ping = true;
            break;
        }
    }
    assert!(saw_ping);

    // Mallory's token cannot use the stream over the wire either.
    let mallory = token("mallory", READ_WRITE);
    let (status, _) = http_exchange(addr, "POST", &endpoint, &mallory, &list.to_string()).await;
    assert_eq!(status, 404);

    // Graceful shutdown ends the stream cleanly.
    assert_eq!(harness.service.close_streams(), 1);
    assert!(stream.reaches_end().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_session_is_removed_when_the_client_disconnects() {
    let config = config_with(|config| config.sse_keep_alive = Some(Duration::from_millis(20)));
    let harness = Harness::with_config(config);
    let addr = serve_on_loopback(harness.app.clone()).await;
    let alice = token("alice", READ_WRITE);
    let mut stream = SseConnection::open(addr, "/mcp/sse", &alice).await;
    let SseItem::Event { data: endpoint, .. } = stream.next_event().await else {
        unreachable!()
    };
    assert_eq!(harness.service.open_sessions(), 1);
    drop(stream);
    // The server notices when a keep-alive write fails; wait for that event.
    let ping = rpc(1, "ping", json!({})).to_string();
    let mut status = 202;
    for _ in 0..400 {
        if harness.service.open_sessions() == 0 {
            (status, _) = http_exchange(addr, "POST", &endpoint, &alice, &ping).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(harness.service.open_sessions(), 0);
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_over_a_real_socket() {
    let harness = Harness::new();
    let addr = serve_on_loopback(harness.app.clone()).await;
    let alice = token("alice", READ_WRITE);
    let call = rpc(
        1,
        "tools/call",
        json!({"name": "add_memories", "arguments": {"text": "Over the wire"}}),
    );
    let (status, body) = http_exchange(addr, "POST", "/mcp", &alice, &call.to_string()).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["result"]["structuredContent"]["memory"],
        "Over the wire"
    );
    let owner = Owner::new("alice").unwrap();
    let id: MemoryId = answer["result"]["structuredContent"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stored = harness
        .store
        .get(&owner, id, &Access::new("test", "test:check"))
        .await
        .unwrap();
    assert!(stored.is_some());
}
