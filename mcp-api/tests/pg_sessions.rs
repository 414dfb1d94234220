//! Two replicas of the MCP service on one PostgreSQL (`SessionBackend::Postgres`): each
//! has its own pool and LISTEN connection and shares one schema with the other; they
//! share one `SqliteStore` for memories (the memory store is not under test here).
//!
//! Needs a PostgreSQL server: `MCP_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). An unreachable server fails the tests.
//! Every test works in a fresh schema (through `search_path`) that it drops at the end.
#![cfg(all(feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod mcp_common;
#[path = "common/pg_schema.rs"]
mod pg_schema;

use std::sync::Arc;
use std::time::Duration;

use http::Request;
use http_body_util::Full;
use mcp_api::mcp::{McpConfig, PostgresSessions, PostgresSessionsBuilder, SessionBackend};
use mcp_common::*;
use serde_json::{Value, json};

use self::pg_schema::Database;

impl Database {
    /// A replica with its own pool and LISTEN connection; `tune` adjusts its builder.
    async fn replica(
        &self,
        config: McpConfig,
        tune: impl FnOnce(PostgresSessionsBuilder) -> PostgresSessionsBuilder,
    ) -> (Harness, PostgresSessions) {
        let builder = PostgresSessions::builder(self.pool(), self.scoped.clone())
            .heartbeat_interval(Duration::from_millis(100));
        let sessions = tune(builder).start().await.unwrap();
        let harness = Harness::replica(
            Arc::clone(&self.store),
            config,
            SessionBackend::Postgres(sessions.clone()),
        );
        (harness, sessions)
    }

    async fn count(&self, sql: &str) -> i64 {
        self.admin.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// Drops the schema (with everything the replicas created in it).
    async fn drop_schema(mut self, replicas: &[&PostgresSessions]) {
        for replica in replicas {
            replica.shutdown().await.unwrap();
        }
        self.admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await
            .unwrap_or_else(|error| panic!("dropping {} on {}: {error}", self.schema, self.url));
        self.dropped = true;
    }
}

fn no_keep_alive() -> McpConfig {
    let mut config = McpConfig::default();
    config.sse_keep_alive = None;
    config
}

/// A client of `harness` already in `session`, at `version`.
fn joined<'a>(
    harness: &'a Harness,
    sub: &str,
    session: &str,
    version: &'static str,
) -> McpClient<'a> {
    let mut client = harness.client(sub, READ_WRITE);
    client.session = Some(session.to_owned());
    client.version = Some(version);
    client
}

fn hex_sha256(text: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

fn delete_session(token: &str, session: &str) -> Request<Full<bytes::Bytes>> {
    Request::delete("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("mcp-session-id", session)
        .body(Full::default())
        .unwrap()
}

/// The status and body of a request naming `session` with `sub`'s token.
async fn tools_list_as(harness: &Harness, sub: &str, session: &str) -> (u16, Value) {
    let answer = joined(harness, sub, session, "2025-06-18")
        .request("tools/list", json!({}))
        .await;
    (answer.status.as_u16(), answer.message)
}

#[tokio::test]
async fn a_session_minted_on_one_replica_is_served_by_the_other() {
    let db = Database::new("mcp_sessions").await;
    let (a, sessions_a) = db.replica(McpConfig::default(), |b| b).await;
    let (b, sessions_b) = db.replica(McpConfig::default(), |b| b).await;

    let mut on_a = a.client("alice", READ_WRITE);
    on_a.initialize("2025-11-25").await;
    let session = on_a.session.clone().unwrap();

    let mut on_b = joined(&b, "alice", &session, "2025-11-25");
    let tools = on_b.request("tools/list", json!({})).await;
    assert_eq!(tools.status, 200, "{:?}", tools.message);
    assert!(
        !tools.message["result"]["tools"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let added = on_b
        .call_ok("add_memories", json!({"text": "Replicas share sessions"}))
        .await;
    assert_eq!(added["memory"], "Replicas share sessions");

    // The negotiated version travels with the session: without the version header, a
    // 2025-11-25 session's SSE answers start with a priming event (2025-03-26, the
    // default without a session, has none).
    on_b.version = None;
    on_b.accept = "text/event-stream";
    let answer = on_b.request("ping", json!({})).await;
    assert_eq!(answer.status, 200, "{:?}", answer.message);
    assert_eq!(answer.sse.len(), 2, "{:?}", answer.sse);
    let mut stateless = b.client("alice", READ_WRITE);
    stateless.accept = "text/event-stream";
    assert_eq!(stateless.request("ping", json!({})).await.sse.len(), 1);

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

#[tokio::test]
async fn attack_another_subject_presenting_the_session_on_the_other_replica_gets_the_unknown_answer()
 {
    let db = Database::new("mcp_sessions").await;
    let (a, sessions_a) = db.replica(McpConfig::default(), |b| b).await;
    let (b, sessions_b) = db.replica(McpConfig::default(), |b| b).await;
    let mut alice = a.client("alice", READ_WRITE);
    alice.initialize("2025-06-18").await;
    let session = alice.session.clone().unwrap();

    let unknown = tools_list_as(&b, "bob", &"0".repeat(40)).await;
    assert_eq!(unknown.0, 404);
    assert_eq!(tools_list_as(&b, "bob", &session).await, unknown);
    // Also once the other replica has the session in its cache.
    assert_eq!(tools_list_as(&b, "alice", &session).await.0, 200);
    assert_eq!(tools_list_as(&b, "bob", &session).await, unknown);
    assert_eq!(tools_list_as(&a, "bob", &session).await, unknown);
    // Bob cannot end it either, and it survives.
    let deleted = b
        .send(delete_session(&token("bob", READ_WRITE), &session))
        .await;
    assert_eq!(deleted.status(), 404);
    assert_eq!(tools_list_as(&b, "alice", &session).await.0, 200);

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

#[tokio::test]
async fn delete_on_one_replica_ends_the_session_on_every_replica() {
    let db = Database::new("mcp_sessions").await;
    // A trusts its cache for ten minutes: only the notification can end the session there.
    let (a, sessions_a) = db
        .replica(McpConfig::default(), |b| {
            b.cache_ttl(Duration::from_secs(600))
        })
        .await;
    let (b, sessions_b) = db.replica(McpConfig::default(), |b| b).await;
    let mut alice = a.client("alice", READ_WRITE);
    alice.initialize("2025-06-18").await;
    let session = alice.session.clone().unwrap();
    // Both replicas have it cached.
    assert_eq!(tools_list_as(&a, "alice", &session).await.0, 200);
    assert_eq!(tools_list_as(&b, "alice", &session).await.0, 200);

    let deleted = b
        .send(delete_session(&token("alice", READ_WRITE), &session))
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(tools_list_as(&b, "alice", &session).await.0, 404);
    assert_eq!(db.count("SELECT count(*) FROM mcp_session").await, 0);
    // Replica A hears of it through NOTIFY (without it, the bound is the cache TTL).
    let bound = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = tools_list_as(&a, "alice", &session).await;
        if status == 404 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < bound,
            "replica A still serves a deleted session"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second DELETE anywhere finds nothing.
    let again = a
        .send(delete_session(&token("alice", READ_WRITE), &session))
        .await;
    assert_eq!(again.status(), 404);

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

#[tokio::test]
async fn only_the_hash_of_a_session_id_is_stored_and_touches_are_rate_limited() {
    let db = Database::new("mcp_sessions").await;
    let (a, sessions_a) = db.replica(McpConfig::default(), |b| b).await;
    let (b, sessions_b) = db.replica(McpConfig::default(), |b| b).await;
    let mut alice = a.client("alice", READ_WRITE);
    alice.initialize("2025-06-18").await;
    let session = alice.session.clone().unwrap();

    let row = db
        .admin
        .query_one("SELECT id_hash, s::text FROM mcp_session s", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), hex_sha256(&session));
    let whole_row: String = row.get(1);
    assert!(!whole_row.contains(&session), "{whole_row}");

    // The first use on B checks and touches the record; uses within the cache TTL do not
    // write it again.
    assert_eq!(tools_list_as(&b, "alice", &session).await.0, 200);
    let expiry = "SELECT expires_at::text FROM mcp_session";
    let touched: String = db.admin.query_one(expiry, &[]).await.unwrap().get(0);
    for _ in 0..5 {
        assert_eq!(tools_list_as(&b, "alice", &session).await.0, 200);
    }
    let after: String = db.admin.query_one(expiry, &[]).await.unwrap().get(0);
    assert_eq!(touched, after);

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

#[tokio::test]
async fn an_expired_session_is_unknown_on_every_replica() {
    let db = Database::new("mcp_sessions").await;
    let (a, sessions_a) = db.replica(McpConfig::default(), |b| b).await;
    // B checks the shared record on every request.
    let (b, sessions_b) = db
        .replica(McpConfig::default(), |b| b.cache_ttl(Duration::ZERO))
        .await;
    let mut alice = a.client("alice", READ_WRITE);
    alice.initialize("2025-06-18").await;
    let session = alice.session.clone().unwrap();
    assert_eq!(tools_list_as(&b, "alice", &session).await.0, 200);
    db.admin
        .execute(
            "UPDATE mcp_session SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(tools_list_as(&b, "alice", &session).await.0, 404);

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

#[tokio::test]
async fn per_subject_and_total_bounds_hold_across_replicas() {
    let db = Database::new("mcp_sessions").await;
    let mut config = McpConfig::default();
    config.max_sessions_per_subject = 2;
    config.max_sessions = 3;
    let (a, sessions_a) = db.replica(config.clone(), |b| b).await;
    let (b, sessions_b) = db.replica(config, |b| b).await;

    let mut opened = Vec::new();
    for harness in [&a, &b, &a] {
        let mut client = harness.client("alice", READ_WRITE);
        client.initialize("2025-06-18").await;
        opened.push(client.session.clone().unwrap());
    }
    // Alice's oldest session made room for her third, on whichever replica.
    assert_eq!(
        db.count("SELECT count(*) FROM mcp_session WHERE subject = 'alice'")
            .await,
        2
    );
    assert_eq!(tools_list_as(&b, "alice", &opened[0]).await.0, 404);
    assert_eq!(tools_list_as(&a, "alice", &opened[0]).await.0, 404);
    assert_eq!(tools_list_as(&b, "alice", &opened[2]).await.0, 200);

    // The total: bob's and carol's sessions push out the least recently used one.
    for (harness, sub) in [(&b, "bob"), (&a, "carol")] {
        let mut client = harness.client(sub, READ_WRITE);
        client.initialize("2025-06-18").await;
    }
    assert_eq!(db.count("SELECT count(*) FROM mcp_session").await, 3);

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

// ----------------------------------------------------------------------------------------
// Legacy HTTP+SSE over real sockets.
// ----------------------------------------------------------------------------------------

/// Opens `sub`'s stream on `addr`; the stream and its message endpoint.
async fn open_stream(addr: std::net::SocketAddr, sub: &str) -> (SseConnection, String) {
    let mut stream = SseConnection::open(addr, "/mcp/sse", &token(sub, READ_WRITE)).await;
    assert_eq!(stream.status(), 200, "{}", stream.head);
    let SseItem::Event { event, data, .. } = stream.next_event().await else {
        panic!("no endpoint event");
    };
    assert_eq!(event.as_deref(), Some("endpoint"));
    (stream, data)
}

async fn post_to(
    addr: std::net::SocketAddr,
    endpoint: &str,
    sub: &str,
    message: &Value,
) -> (u16, String) {
    http_exchange(
        addr,
        "POST",
        endpoint,
        &token(sub, READ_WRITE),
        &message.to_string(),
    )
    .await
}

#[tokio::test]
async fn a_legacy_post_on_another_replica_is_answered_on_the_stream() {
    let db = Database::new("mcp_sessions").await;
    // Keep-alives let A notice when the client goes away (a write fails).
    let mut config = McpConfig::default();
    config.sse_keep_alive = Some(Duration::from_millis(20));
    let (a, sessions_a) = db.replica(config, |b| b).await;
    let (b, sessions_b) = db.replica(no_keep_alive(), |b| b).await;
    let addr_a = serve_on_loopback(a.app.clone()).await;
    let addr_b = serve_on_loopback(b.app.clone()).await;
    let (mut stream, endpoint) = open_stream(addr_a, "alice").await;
    assert_eq!(
        db.count("SELECT count(*) FROM mcp_session WHERE kind = 1")
            .await,
        1
    );

    let init = rpc(
        1,
        "initialize",
        json!({"protocolVersion": "2024-11-05", "capabilities": {}}),
    );
    assert_eq!(post_to(addr_b, &endpoint, "alice", &init).await.0, 202);
    let answer = stream.next_event().await.data_json();
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");

    // An answer far above NOTIFY's 8000-byte payload limit.
    let long_text = "memories across replicas ".repeat(500);
    let call = rpc(
        2,
        "tools/call",
        json!({"name": "add_memories", "arguments": {"text": long_text.trim_end()}}),
    );
    assert_eq!(post_to(addr_b, &endpoint, "alice", &call).await.0, 202);
    let SseItem::Event { data, .. } = stream.next_event().await else {
        panic!("no answer");
    };
    assert!(data.len() > 8000, "{}", data.len());
    let answer: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(answer["id"], 2);
    assert_eq!(
        answer["result"]["structuredContent"]["memory"],
        long_text.trim_end()
    );

    // The holder's own POSTs still take the local path.
    let list = rpc(3, "tools/list", json!({}));
    assert_eq!(post_to(addr_a, &endpoint, "alice", &list).await.0, 202);
    assert_eq!(stream.next_event().await.data_json()["id"], 3);

    // Everything delivered left the outbox.
    assert_eq!(db.count("SELECT count(*) FROM mcp_outbox").await, 0);

    // The client goes away: the stream's row goes too.
    drop(stream);
    let bound = tokio::time::Instant::now() + IO_GUARD;
    while db
        .count("SELECT count(*) FROM mcp_session WHERE kind = 1")
        .await
        > 0
    {
        assert!(tokio::time::Instant::now() < bound, "the row stays");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(post_to(addr_b, &endpoint, "alice", &list).await.0, 404);

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

#[tokio::test]
async fn attack_a_legacy_post_with_another_subjects_token_gets_the_unknown_answer() {
    let db = Database::new("mcp_sessions").await;
    let (a, sessions_a) = db.replica(no_keep_alive(), |b| b).await;
    let (b, sessions_b) = db.replica(no_keep_alive(), |b| b).await;
    let addr_a = serve_on_loopback(a.app.clone()).await;
    let addr_b = serve_on_loopback(b.app.clone()).await;
    let (_stream, endpoint) = open_stream(addr_a, "alice").await;
    let list = rpc(1, "tools/list", json!({}));

    let unknown = post_to(
        addr_b,
        &format!("/mcp/sse/messages?session_id={}", "0".repeat(40)),
        "bob",
        &list,
    )
    .await;
    assert_eq!(unknown.0, 404);
    assert_eq!(post_to(addr_b, &endpoint, "bob", &list).await, unknown);
    assert_eq!(post_to(addr_a, &endpoint, "bob", &list).await, unknown);

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

#[tokio::test]
async fn a_stream_whose_replica_stopped_heartbeating_is_unknown() {
    let db = Database::new("mcp_sessions").await;
    // A heartbeats rarely, so the test can make it look dead.
    let (a, sessions_a) = db
        .replica(no_keep_alive(), |b| {
            b.heartbeat_interval(Duration::from_secs(600))
        })
        .await;
    let (b, sessions_b) = db.replica(no_keep_alive(), |b| b).await;
    let addr_a = serve_on_loopback(a.app.clone()).await;
    let addr_b = serve_on_loopback(b.app.clone()).await;
    let (_stream, endpoint) = open_stream(addr_a, "alice").await;
    let list = rpc(1, "tools/list", json!({}));
    assert_eq!(post_to(addr_b, &endpoint, "alice", &list).await.0, 202);

    db.admin
        .execute(
            "UPDATE mcp_replica SET heartbeat_at = now() - interval '1 hour' \
             WHERE replica_id = $1",
            &[&sessions_a.replica_id()],
        )
        .await
        .unwrap();
    let unknown = post_to(
        addr_b,
        &format!("/mcp/sse/messages?session_id={}", "0".repeat(40)),
        "alice",
        &list,
    )
    .await;
    assert_eq!(post_to(addr_b, &endpoint, "alice", &list).await, unknown);

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

#[tokio::test]
async fn stream_limits_hold_across_replicas() {
    let db = Database::new("mcp_sessions").await;
    let mut config = no_keep_alive();
    config.max_sse_streams_per_subject = 1;
    let (a, sessions_a) = db.replica(config.clone(), |b| b).await;
    let (b, sessions_b) = db.replica(config, |b| b).await;
    let addr_a = serve_on_loopback(a.app.clone()).await;
    let addr_b = serve_on_loopback(b.app.clone()).await;
    let (_first, _) = open_stream(addr_a, "alice").await;
    let second = SseConnection::open(addr_b, "/mcp/sse", &token("alice", READ_WRITE)).await;
    assert_eq!(second.status(), 429);
    let (_bobs, _) = open_stream(addr_b, "bob").await;

    db.drop_schema(&[&sessions_a, &sessions_b]).await;
}

#[tokio::test]
async fn the_outbox_is_bounded_per_stream_and_swept() {
    let db = Database::new("mcp_sessions").await;
    let (b, sessions_b) = db
        .replica(no_keep_alive(), |b| {
            b.replica_timeout(Duration::from_secs(1))
        })
        .await;
    let addr_b = serve_on_loopback(b.app.clone()).await;
    // A replica that is alive but never takes its answers (as if its process hung).
    let id = "f".repeat(40);
    db.admin
        .batch_execute(&format!(
            "INSERT INTO mcp_replica (replica_id) VALUES ('hung');
             INSERT INTO mcp_session (id_hash, subject, kind, holder)
                  VALUES ('\\x{}', 'alice', 1, 'hung');
             INSERT INTO mcp_outbox (holder, session_hash, message)
                  SELECT 'hung', id_hash, '{{}}' FROM mcp_session, generate_series(1, 32);",
            hex(&hex_sha256(&id))
        ))
        .await
        .unwrap();
    let endpoint = format!("/mcp/sse/messages?session_id={id}");
    let list = rpc(1, "tools/list", json!({}));
    let (status, _) = post_to(addr_b, &endpoint, "alice", &list).await;
    assert_eq!(status, 503);
    assert_eq!(db.count("SELECT count(*) FROM mcp_outbox").await, 32);

    // The replica stops heartbeating: a sweep deletes it, its stream and its answers.
    db.admin
        .execute(
            "UPDATE mcp_replica SET heartbeat_at = now() - interval '1 hour' \
             WHERE replica_id = 'hung'",
            &[],
        )
        .await
        .unwrap();
    let bound = tokio::time::Instant::now() + IO_GUARD;
    while db.count("SELECT count(*) FROM mcp_outbox").await > 0 {
        assert!(
            tokio::time::Instant::now() < bound,
            "the outbox is not swept"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(db.count("SELECT count(*) FROM mcp_session").await, 0);
    assert_eq!(post_to(addr_b, &endpoint, "alice", &list).await.0, 404);

    db.drop_schema(&[&sessions_b]).await;
}

#[tokio::test]
async fn shutdown_removes_the_replica_and_its_streams() {
    let db = Database::new("mcp_sessions").await;
    let (a, sessions_a) = db.replica(no_keep_alive(), |b| b).await;
    let (b, sessions_b) = db.replica(no_keep_alive(), |b| b).await;
    let addr_a = serve_on_loopback(a.app.clone()).await;
    let (mut stream, _) = open_stream(addr_a, "alice").await;
    let mut alice = b.client("alice", READ_WRITE);
    alice.initialize("2025-06-18").await;

    assert_eq!(a.service.close_streams(), 1);
    sessions_a.shutdown().await.unwrap();
    assert!(stream.reaches_end().await);
    assert_eq!(db.count("SELECT count(*) FROM mcp_replica").await, 1);
    assert_eq!(
        db.count("SELECT count(*) FROM mcp_session WHERE kind = 1")
            .await,
        0
    );
    // Streamable HTTP sessions belong to no replica and survive.
    let session = alice.session.clone().unwrap();
    assert_eq!(tools_list_as(&b, "alice", &session).await.0, 200);

    db.drop_schema(&[&sessions_b]).await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
