//! The service on a virtual clock: MCP sessions expire after their idle timeout and
//! per-user allowances come back, all by moving a `ManualClock`, without sleeping. A
//! `MemoryServer` reads its verifier's clock, so one clock drives tokens, sessions and
//! rate limits together.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod mcp_common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use jwks_verify::{Clock, ManualClock};
use mcp_api::mcp::McpConfig;
use mcp_api::{Limits, MemoryServer, RateLimit, SqliteStore};
use mcp_common::{Harness, READ_WRITE, manual_clock, read_answer, resource, token_at, verifier_on};
use serde_json::json;
use tower::ServiceExt;

const IDLE: Duration = Duration::from_secs(30 * 60);

fn idle_config() -> McpConfig {
    let mut config = McpConfig::default();
    config.session_idle_timeout = IDLE;
    config
}

#[tokio::test]
async fn a_session_expires_after_its_idle_timeout_on_the_clock() {
    let clock = manual_clock();
    let harness = Harness::with_clock(idle_config(), clock.clone());
    let mut client = harness.client("alice", READ_WRITE);
    client.initialize("2025-06-18").await;

    // Each request renews the session: two gaps of two thirds of the timeout each.
    for _ in 0..2 {
        clock.advance(IDLE * 2 / 3);
        assert_eq!(client.request("ping", json!({})).await.status, 200);
    }
    // Exactly the timeout idle still lives; a second more does not.
    clock.advance(IDLE);
    assert_eq!(client.request("ping", json!({})).await.status, 200);
    clock.advance(IDLE + Duration::from_secs(1));
    assert_eq!(client.request("ping", json!({})).await.status, 404);
}

/// A `MemoryServer` whose verifier reads `clock`.
fn server_on(clock: &ManualClock) -> (tempfile::TempDir, MemoryServer<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("m.db"), Limits::default()).unwrap());
    let server = MemoryServer::new(store, verifier_on(clock.clone()), resource(), idle_config());
    (dir, server)
}

fn mcp_post(token: &str, session: Option<&str>, body: &serde_json::Value) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        builder = builder
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    builder.body(Full::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn a_memory_server_ages_sessions_on_its_verifiers_clock() {
    let clock = manual_clock();
    let (_dir, server) = server_on(&clock);
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test-client", "version": "1.0.0"},
    }});
    let token = token_at("alice", READ_WRITE, clock.unix_time());
    let answer = read_answer(
        server
            .clone()
            .oneshot(mcp_post(&token, None, &initialize))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.message);
    let session = answer.session.expect("a session id");

    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    clock.advance(IDLE + Duration::from_secs(1));
    // A token issued on the same clock is still good; the session is not.
    let token = token_at("alice", READ_WRITE, clock.unix_time());
    let response = server
        .clone()
        .oneshot(mcp_post(&token, Some(&session), &ping))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_memory_servers_rate_limit_refills_on_its_verifiers_clock() {
    let clock = manual_clock();
    let (_dir, server) = server_on(&clock);
    let server = server.with_rate_limit(RateLimit::new(1, 2));
    let list = |clock: &ManualClock| {
        Request::builder()
            .uri("/api/v1/memories/")
            .header(
                "authorization",
                format!(
                    "Bearer {}",
                    token_at("mallory", "memories:read", clock.unix_time())
                ),
            )
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(
            server.clone().oneshot(list(&clock)).await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        server.clone().oneshot(list(&clock)).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        server.clone().oneshot(list(&clock)).await.unwrap().status(),
        200
    );
    assert_eq!(
        server.clone().oneshot(list(&clock)).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
