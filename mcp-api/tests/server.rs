//! The composed memory server: routing, public documents, CORS on every answer, auth in
//! front of both APIs, and health.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use mcp_api::mcp::McpConfig;
use mcp_api::{Limits, MemoryServer, SqliteStore};
use serde_json::{Value, json};
use tower::ServiceExt;

mod mcp_common;
use mcp_common::{ISSUER, json_body, resource, token, verifier};

fn server() -> (tempfile::TempDir, MemoryServer<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("m.db"), Limits::default()).unwrap());
    (
        dir,
        MemoryServer::new(store, verifier(), resource(), McpConfig::default()),
    )
}

fn request(method: Method, path: &str) -> http::request::Builder {
    Request::builder().method(method).uri(path)
}

async fn send(
    server: &MemoryServer<SqliteStore>,
    request: Request<Full<Bytes>>,
) -> http::Response<mcp_api::http::ResponseBody> {
    server.clone().oneshot(request).await.unwrap()
}

#[tokio::test]
async fn public_documents_need_no_token() {
    let (_dir, server) = server();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource/mcp/sse",
        "/mcp/sse/oauth-protected-resource",
    ] {
        let response = send(
            &server,
            request(Method::GET, path).body(Full::default()).unwrap(),
        )
        .await;
        assert_eq!(response.status(), 200, "{path}");
        let metadata = json_body(response).await;
        assert_eq!(metadata["resource"], "https://mcp.example/mcp");
        assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
        assert_eq!(
            metadata["scopes_supported"],
            json!(["memories:read", "memories:write"])
        );
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
        assert_eq!(
            metadata["resource_documentation"],
            "https://mcp.example/openapi.json"
        );
    }
    let response = send(
        &server,
        request(Method::GET, "/openapi.json")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let doc: Value = json_body(response).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["oidc"]["openIdConnectUrl"],
        format!("{ISSUER}/.well-known/openid-configuration")
    );
    let health = send(
        &server,
        request(Method::GET, "/health")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(health.status(), 200);
    assert_eq!(json_body(health).await, json!({"status": "ok"}));
}

const HEALTH_TOKEN: &str = "operator-token-0123456789abcdefghijkl";

async fn health(server: &MemoryServer<SqliteStore>, authorization: Option<&str>) -> (u16, Value) {
    let mut builder = request(Method::GET, "/health");
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    let response = send(server, builder.body(Full::default()).unwrap()).await;
    (response.status().as_u16(), json_body(response).await)
}

#[tokio::test]
async fn health_details_need_the_operator_token() {
    let (_dir, server) = server();
    let server = server.with_health_token(HEALTH_TOKEN);
    let (status, details) = health(&server, Some(&format!("Bearer {HEALTH_TOKEN}"))).await;
    assert_eq!(status, 200);
    assert_eq!(details["store"], "ok");
    assert_eq!(details["keys_in_use"], 1);
    assert!(details["verified"].is_u64());
    assert!(details["jwks_fetch_failures"].is_u64());
}

#[tokio::test]
async fn attack_public_health_reveals_only_the_status() {
    let (_dir, plain) = server();
    let (_dir2, guarded) = server();
    let guarded = guarded.with_health_token(HEALTH_TOKEN);
    for server in [&plain, &guarded] {
        assert_eq!(health(server, None).await, (200, json!({"status": "ok"})));
    }
    // Without a configured token a bearer header unlocks nothing.
    assert_eq!(
        health(&plain, Some("Bearer anything")).await,
        (200, json!({"status": "ok"}))
    );
}

#[tokio::test]
async fn attack_health_with_a_wrong_operator_token_is_refused() {
    let (_dir, server) = server();
    let server = server.with_health_token(HEALTH_TOKEN);
    let almost = &HEALTH_TOKEN[..HEALTH_TOKEN.len() - 1];
    for header in [
        format!("Bearer {almost}"),
        format!("Bearer {HEALTH_TOKEN}x"),
    ] {
        let (status, body) = health(&server, Some(&header)).await;
        assert_eq!(status, 401, "{header}");
        assert_eq!(body["error"], "invalid_token");
        assert!(body.get("keys_in_use").is_none());
    }
    // Another scheme is no token: the public answer.
    let (status, body) = health(&server, Some(&format!("Basic {HEALTH_TOKEN}"))).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn every_protected_route_answers_401_with_resource_metadata() {
    let (_dir, server) = server();
    let well_known = "https://mcp.example/.well-known/oauth-protected-resource/mcp";
    let under_sse = "https://mcp.example/mcp/sse/oauth-protected-resource";
    for (method, path, metadata) in [
        (Method::POST, "/mcp", well_known),
        (Method::GET, "/mcp/sse", under_sse),
        (Method::POST, "/mcp/sse/messages?session_id=x", under_sse),
        (Method::POST, "/mcp/messages?session_id=x", under_sse),
        (Method::GET, "/api/v1/memories/", well_known),
        (Method::POST, "/api/v1/memories/", well_known),
        (Method::GET, "/api/v1/stats", well_known),
    ] {
        let response = send(
            &server,
            request(method.clone(), path).body(Full::default()).unwrap(),
        )
        .await;
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
    // A refused token on the legacy transport names the same location.
    let response = send(
        &server,
        request(Method::GET, "/mcp/sse")
            .header("authorization", "Bearer not.a.token")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(
            "Bearer resource_metadata=\"{under_sse}\", scope=\"memories:read memories:write\", error=\"invalid_token\""
        )
        .as_str()
    );
}

/// The discovery a client configured with `{base}/mcp/sse` performs, as the official MCP
/// Python SDK does it: 401 → the `resource_metadata` URL of the challenge → a document
/// whose `resource` is a prefix of the server URL on the same origin. Every URL involved
/// stays under `/mcp/sse`.
#[tokio::test]
async fn sse_discovery_stays_under_mcp_sse() {
    let (_dir, server) = server();
    let response = send(
        &server,
        request(Method::GET, "/mcp/sse")
            .header("accept", "text/event-stream")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    let url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let path = url.strip_prefix("https://mcp.example").unwrap();
    assert!(path.starts_with("/mcp/sse/"), "{path}");
    let response = send(
        &server,
        request(Method::GET, path).body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let metadata = json_body(response).await;
    let resource = metadata["resource"].as_str().unwrap();
    assert_eq!(resource, "https://mcp.example/mcp");
    // The SDK's `check_resource_allowed`: same origin, path prefix at a segment boundary.
    assert!(format!("{}/", "https://mcp.example/mcp/sse").starts_with(&format!("{resource}/")));
    // Only GET serves the document; the copy under /mcp/sse is nothing else.
    let response = send(
        &server,
        request(Method::POST, path).body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn cors_headers_reach_browsers_even_on_401() {
    let (_dir, server) = server();
    let response = send(
        &server,
        request(Method::POST, "/mcp")
            .header("origin", "https://chatgpt.com")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://chatgpt.com"
    );
    assert!(
        response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("WWW-Authenticate")
    );
    assert!(
        response
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
}

#[tokio::test]
async fn preflight_is_answered_without_a_token_for_allowed_origins_only() {
    let (_dir, server) = server();
    let preflight = |origin: &str| {
        request(Method::OPTIONS, "/mcp")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-session-id",
            )
            .body(Full::default())
            .unwrap()
    };
    let allowed = send(&server, preflight("http://localhost:6274")).await;
    assert_eq!(allowed.status(), 204);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );
    let headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(headers.contains("Authorization") && headers.contains("Mcp-Session-Id"));
    let refused = send(&server, preflight("https://evil.example")).await;
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn attack_repeated_origin_header_with_a_disallowed_value_is_refused() {
    let (_dir, server) = server();
    let bearer = format!("Bearer {}", token("alice", "memories:read memories:write"));
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    for origins in [
        ["https://chatgpt.com", "https://evil.example"],
        ["https://evil.example", "https://chatgpt.com"],
    ] {
        let mut mcp = request(Method::POST, "/mcp")
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Full::from(list.to_string()))
            .unwrap();
        let mut preflight = request(Method::OPTIONS, "/mcp")
            .header("access-control-request-method", "POST")
            .body(Full::default())
            .unwrap();
        for origin in origins {
            for headers in [mcp.headers_mut(), preflight.headers_mut()] {
                headers.append("origin", origin.parse().unwrap());
            }
        }
        let response = send(&server, mcp).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origins:?}");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origins:?}"
        );
        let response = send(&server, preflight).await;
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origins:?}"
        );
        assert!(
            response
                .headers()
                .get("access-control-allow-methods")
                .is_none(),
            "{origins:?}"
        );
    }
}

#[tokio::test]
async fn authenticated_requests_reach_both_apis() {
    let (_dir, server) = server();
    let bearer = format!("Bearer {}", token("alice", "memories:read memories:write"));
    let created = send(
        &server,
        request(Method::POST, "/api/v1/memories/")
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body(Full::from(json!({"text": "likes green tea"}).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(created.status(), 201);

    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "search", "arguments": {"query": "tea"}}});
    let response = send(
        &server,
        request(Method::POST, "/mcp")
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Full::from(call.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let answer = json_body(response).await;
    assert_eq!(
        answer["result"]["structuredContent"]["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let (_dir, server) = server();
    let response = send(
        &server,
        request(Method::GET, "/admin")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(response).await["error"], "not_found");
}

#[tokio::test]
async fn attack_one_user_flooding_is_limited_without_slowing_another() {
    let (_dir, server) = server();
    let server = server.with_rate_limit(mcp_api::RateLimit::new(1, 3));
    let list = |sub: &str| {
        request(Method::GET, "/api/v1/memories/")
            .header(
                "authorization",
                format!("Bearer {}", token(sub, "memories:read")),
            )
            .body(Full::default())
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(send(&server, list("mallory")).await.status(), 200);
    }
    let refused = send(&server, list("mallory")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(json_body(refused).await["error"], "rate_limited");
    // Another user is not affected, and neither are the public routes.
    assert_eq!(send(&server, list("alice")).await.status(), 200);
    let health = send(
        &server,
        request(Method::GET, "/health")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(health.status(), 200);

    // On MCP the answer is also a JSON-RPC error.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let refused = send(
        &server,
        request(Method::POST, "/mcp")
            .header(
                "authorization",
                format!("Bearer {}", token("mallory", "memories:read")),
            )
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Full::from(call.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let answer = json_body(refused).await;
    assert_eq!(answer["error"]["code"], -32000);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry in")
    );
}
