//! The `oidc-server` binary as a process: who may sign in upstream decides whether it starts,
//! and configuration errors fail at once instead of being retried like an unreachable
//! upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::process::{Command, Output};

mod common;
use common::oauth::{CodeRequest, authorization_code, form, send};
use common::{Server, TestIssuer, free_port, get};

/// The environment of an oidc-server on `port` with `upstream` as its upstream provider and
/// no restriction on who may sign in there.
fn unrestricted_upstream(
    upstream: &str,
    data_dir: &std::path::Path,
    port: u16,
) -> Vec<(String, String)> {
    [
        ("OIDC_BASE_URL", format!("http://127.0.0.1:{port}")),
        ("OIDC_LISTEN", format!("127.0.0.1:{port}")),
        ("OIDC_DATA_DIR", data_dir.to_str().unwrap().to_owned()),
        ("OIDC_UPSTREAM_ISSUER", upstream.to_owned()),
        ("GOOGLE_CLIENT_ID", "memory-stack-test".to_owned()),
        ("GOOGLE_CLIENT_SECRET", "not-a-real-secret".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Runs oidc-server to completion without the restriction settings of the caller's environment.
fn run_to_exit(envs: &[(String, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oidc-server"))
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .env_remove("OIDC_ALLOW_ANY_USER")
        .env_remove("OIDC_ALLOWED_EMAILS")
        .env_remove("OIDC_ALLOWED_DOMAINS")
        .env_remove("OIDC_HOSTED_DOMAINS")
        .env_remove("OIDC_USERS_FILE")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_any_user_starts_without_a_restriction() {
    let upstream = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut envs = unrestricted_upstream(&upstream.url, dir.path(), port);
    envs.push(("OIDC_ALLOW_ANY_USER".to_owned(), "true".to_owned()));
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Server::spawn(env!("CARGO_BIN_EXE_oidc-server"), &[], &envs, addr);
    server.wait_ready().await;

    let (status, discovery) = get(
        &format!("http://{addr}/.well-known/openid-configuration"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(discovery["issuer"], format!("http://{addr}"));
    // Token status lists are on by default: the aggregation is advertised and served.
    let aggregation = discovery["status_list_aggregation_endpoint"]
        .as_str()
        .unwrap();
    assert_eq!(aggregation, format!("http://{addr}/statuslists"));
    let (status, lists) = get(aggregation, None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(lists, serde_json::json!({"status_lists": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_restriction_is_refused_before_contacting_the_upstream() {
    // Nothing listens at the upstream: had the server tried discovery, it would log retries.
    let upstream = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let output = run_to_exit(&unrestricted_upstream(&upstream, dir.path(), 0), &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(stderr.contains("OIDC_ALLOW_ANY_USER=true"), "{stderr}");
    assert!(!stderr.contains("retrying"), "{stderr}");
    assert!(!stderr.contains("not-a-real-secret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_is_not_retried() {
    // The upstream answers; the empty client secret is what is wrong.
    let upstream = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let envs = unrestricted_upstream(&upstream.url, dir.path(), 0);
    let output = run_to_exit(&envs, &["--allow-any-user", "--google-client-secret="]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("misconfigured"), "{stderr}");
    assert!(stderr.contains("client_secret are required"), "{stderr}");
    assert!(!stderr.contains("retrying"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_retried() {
    let upstream = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let envs = unrestricted_upstream(&upstream, dir.path(), 0);
    let output = run_to_exit(&envs, &["--allow-any-user"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(stderr.contains("upstream discovery failed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_scopes_are_parsed_and_the_server_starts() {
    let upstream = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut envs = unrestricted_upstream(&upstream.url, dir.path(), port);
    envs.extend(
        [
            ("OIDC_ALLOW_ANY_USER", "true"),
            ("OIDC_DEFAULT_AUDIENCE", "http://127.0.0.1:8765/mcp"),
            ("OIDC_RESOURCES", "https://other.example/api"),
            (
                "OIDC_RESOURCE_SCOPES",
                "https://other.example/api=memories:read; http://127.0.0.1:8765/mcp=memories:read memories:write",
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Server::spawn(env!("CARGO_BIN_EXE_oidc-server"), &[], &envs, addr);
    server.wait_ready().await;

    let (status, discovery) = get(
        &format!("http://{addr}/.well-known/openid-configuration"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let supported = discovery["scopes_supported"].as_array().unwrap();
    for scope in ["openid", "memories:read", "memories:write"] {
        assert!(supported.iter().any(|s| s == scope), "{supported:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_resource_scopes_are_refused_at_start() {
    // Nothing listens at the upstream: the setting is refused before any login method starts.
    let upstream = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    for (setting, reason) in [
        ("memories:read memories:write", "resource=scope scope"),
        (
            "https://mcp.example/#x=memories:read",
            "not an absolute uri",
        ),
        (
            "https://unserved.example/mcp=memories:read",
            "does not serve",
        ),
        (
            "http://127.0.0.1:8765/mcp=memories:admin",
            "configured scopes",
        ),
    ] {
        let mut envs = unrestricted_upstream(&upstream, dir.path(), 0);
        envs.push(("OIDC_RESOURCE_SCOPES".to_owned(), setting.to_owned()));
        envs.push((
            "OIDC_DEFAULT_AUDIENCE".to_owned(),
            "http://127.0.0.1:8765/mcp".to_owned(),
        ));
        let output = run_to_exit(&envs, &["--allow-any-user"]);
        assert!(!output.status.success(), "{setting} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("OIDC_RESOURCE_SCOPES"), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(!stderr.contains("retrying"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_health_shows_only_the_status_and_the_operator_token_the_details() {
    let upstream = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let token = "0123456789abcdef0123456789abcdef-operator";
    let mut envs = unrestricted_upstream(&upstream.url, dir.path(), port);
    envs.extend(
        [
            ("OIDC_ALLOW_ANY_USER", "true"),
            ("OIDC_HEALTH_TOKEN", token),
            ("OIDC_DYNAMIC_CLIENT_TTL", "7d"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Server::spawn(env!("CARGO_BIN_EXE_oidc-server"), &[], &envs, addr);
    server.wait_ready().await;
    let url = format!("http://{addr}/health");

    let (status, public) = get(&url, None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(public, serde_json::json!({"status": "ok"}));

    let (status, details) = get(&url, Some(token)).await.unwrap();
    assert_eq!(status, 200);
    assert!(details["keys"]["signing_kid"].is_string(), "{details}");
    assert_eq!(details["store"], "ok");

    let (status, refused) = get(&url, Some("0123456789abcdef0123456789abcdef-operatoR"))
        .await
        .unwrap();
    assert_eq!(status, 401);
    assert_eq!(refused["error"], "invalid_token");
    assert!(refused.get("keys").is_none());
}

#[test]
fn a_short_health_token_is_refused_at_start_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("http://127.0.0.1:{}", free_port());
    let mut envs = unrestricted_upstream(&upstream, dir.path(), 0);
    envs.push((
        "OIDC_HEALTH_TOKEN".to_owned(),
        "too-short-secret".to_owned(),
    ));
    let output = run_to_exit(&envs, &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OIDC_HEALTH_TOKEN"), "{stderr}");
    assert!(!stderr.contains("too-short-secret"), "{stderr}");
}

#[test]
fn malformed_token_lifetimes_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("http://127.0.0.1:{}", free_port());
    for (variable, value) in [
        ("OIDC_ACCESS_TOKEN_TTL", "soon"),
        ("OIDC_ACCESS_TOKEN_TTL", "30"),
        ("OIDC_ACCESS_TOKEN_TTL", "25h"),
        ("OIDC_STATUS_LIST_TTL", "0"),
        ("OIDC_STATUS_LIST_TTL", "10x"),
        ("OIDC_STATUS_LIST_TTL", "2h"),
    ] {
        let mut envs = unrestricted_upstream(&upstream, dir.path(), 0);
        envs.push((variable.to_owned(), value.to_owned()));
        let output = run_to_exit(&envs, &["--allow-any-user"]);
        assert!(!output.status.success(), "{variable}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{stderr}");
        assert!(!stderr.contains("retrying"), "{stderr}");
    }
}

/// A clients file naming the memory page: a confidential client with account access.
fn page_clients_file(dir: &std::path::Path, secret: &str) -> std::path::PathBuf {
    let path = dir.join("clients.toml");
    std::fs::write(
        &path,
        format!(
            "[[clients]]\nclient_id = \"{PAGE}\"\nname = \"Memory page\"\n\
             redirect_uris = [\"{PAGE_REDIRECT}\"]\nsecret_sha256 = \"{}\"\naccount_access = true\n",
            oidc_core::secret::SecretHash::of(secret).to_hex()
        ),
    )
    .unwrap();
    path
}

const PAGE: &str = "memory-page";
const PAGE_REDIRECT: &str = "https://mcp.example.com/app/callback";

#[test]
fn a_malformed_clients_file_is_refused_at_start_naming_the_file_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("http://127.0.0.1:{}", free_port());
    let clients = dir.path().join("clients.toml");
    for (text, reason) in [
        (
            format!(
                "[[clients]]\nclient_id = \"{PAGE}\"\nname = \"Memory page\"\n\
                 redirect_uris = [\"{PAGE_REDIRECT}\"]\nclient_secret = \"hunter2-in-the-wrong-key\"\n"
            ),
            "unknown field `client_secret`",
        ),
        (
            format!(
                "[[clients]]\nclient_id = \"{PAGE}\"\nname = \"Memory page\"\n\
                 redirect_uris = [\"{PAGE_REDIRECT}\"]\nsecret_sha256 = \"hunter2-in-the-wrong-key\"\n"
            ),
            "secret_sha256 must be 64 hex characters",
        ),
    ] {
        std::fs::write(&clients, text).unwrap();
        let mut envs = unrestricted_upstream(&upstream, dir.path(), 0);
        envs.push((
            "OIDC_CLIENTS_FILE".to_owned(),
            clients.to_str().unwrap().to_owned(),
        ));
        let output = run_to_exit(&envs, &["--allow-any-user"]);
        assert!(!output.status.success(), "{reason}: started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(clients.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains("clients entry 1"), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(!stderr.contains("retrying"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_client_with_account_access_signs_a_user_in_and_lists_their_grants() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "memory-page-secret-0123456789abcdef";
    let clients = page_clients_file(dir.path(), secret);
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        format!(
            "[[users]]\nusername = \"alice\"\npassword_hash = \"{}\"\n",
            oidc_core::login::hash_password("correct horse").unwrap()
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let data = dir.path().join("data");
    let envs = [
        ("OIDC_BASE_URL", base.as_str()),
        ("OIDC_LISTEN", &base["http://".len()..]),
        ("OIDC_DATA_DIR", data.to_str().unwrap()),
        ("OIDC_USERS_FILE", users.to_str().unwrap()),
        ("OIDC_CLIENTS_FILE", clients.to_str().unwrap()),
    ];
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Server::spawn(env!("CARGO_BIN_EXE_oidc-server"), &[], &envs, addr);
    server.wait_ready().await;

    // The authorization code flow, as the memory page runs it, over the socket.
    let authorization = authorization_code(&CodeRequest {
        base: &base,
        client_id: PAGE,
        redirect_uri: PAGE_REDIRECT,
        scope: "openid profile email offline_access",
        resource: None,
        username: "alice",
        password: "correct horse",
    })
    .await;
    assert!(
        authorization.consent_page.contains("Memory page"),
        "the consent page names the client"
    );
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{PAGE}:{secret}")
        )
    );
    let token = send(
        "POST",
        &format!("{base}/token"),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &basic),
        ],
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", &authorization.code),
            ("redirect_uri", PAGE_REDIRECT),
            ("code_verifier", authorization.verifier.secret()),
        ]),
    )
    .await;
    assert_eq!(token.status, 200, "{}", token.body);
    let tokens: serde_json::Value = serde_json::from_str(&token.body).unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();

    let (status, grants) = get(&format!("{base}/account/grants"), Some(access_token))
        .await
        .unwrap();
    assert_eq!(status, 200, "{grants}");
    let apps = grants["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{grants}");
    assert_eq!(apps[0]["client_id"], PAGE);
    assert_eq!(apps[0]["name"], "Memory page");
    // The default audience's scopes are granted by default (OIDC_RESOURCE_SCOPES).
    assert_eq!(
        apps[0]["scope"],
        "openid profile email offline_access memories:read memories:write"
    );
    assert_eq!(apps[0]["grants"], 1);
    let (status, _) = get(&format!("{base}/account/grants"), None).await.unwrap();
    assert_eq!(status, 401);
}
