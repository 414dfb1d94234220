//! End-to-end tests: software we did not write exercises our `oidc-server` and `mcp-server`
//! over real loopback sockets.
//!
//! | Test | Peer (pinned in `tests/e2e/`) |
//! |---|---|
//! | `upstream_login_through_oidc_provider` | npm `oidc-provider` as a fake Google; `openid-client` as the app |
//! | `openid_client_relying_party` | npm `openid-client` (certified RP), each client auth method |
//! | `jose_verifies_tokens_and_mcp_refuses_forgeries` | npm `jose` |
//! | `revocation_reaches_mcp_server_within_30_seconds` | npm `openid-client` |
//! | `python_mcp_sdk_oauth_and_tools` | PyPI `mcp` (official Python SDK), Streamable HTTP and SSE |
//! | `typescript_mcp_sdk_oauth_and_tools` | npm `@modelcontextprotocol/sdk` |
//! | `chromium_signs_in_and_consents` | Debian `chromium` driven by npm `playwright-core` |
//! | `memory_page_in_chromium` | Debian `chromium` + `playwright-core`, npm `axe-core`, `@modelcontextprotocol/sdk` |
//! | `schemathesis_finds_no_failures_in_the_rest_api` | PyPI `schemathesis`, `st run --checks all` |
//!
//! The peers are installed by the tests themselves into project-local folders, once per
//! lockfile (see `tests/e2e/README.md`). Each peer script prints JSON lines; the driver
//! checks them and prints what was verified (`cargo test --test e2e -- --nocapture`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

mod common;
mod e2e_support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::keys::SigningKey;
use serde_json::json;

use common::free_port;
use e2e_support::suites;
use e2e_support::{
    OneCommandStack, Process, Stack, StackOptions, UpstreamLogin, node_peers, python_peers,
    run_peer, screenshot_dir, target_dir,
};

/// Users of the fake Google: one allowed, one verified but not on the allow-list, one on
/// the allow-list whose email is not verified.
const ALLOWED: &str = "alice@example.com";
const NOT_ALLOWED: &str = "bob@example.com";
const UNVERIFIED: &str = "carol@example.com";

#[test]
fn upstream_login_through_oidc_provider() {
    let node = node_peers();
    let oidc_port = free_port();
    let our_issuer = format!("http://127.0.0.1:{oidc_port}");
    let google_port = free_port();
    let google_issuer = format!("http://127.0.0.1:{google_port}");
    let (client_id, client_secret) = ("memory-stack-oidc", "fake-google-secret-for-e2e-0123456789");
    let accounts = json!([
        {"sub": "100000000000000000001", "email": ALLOWED, "email_verified": true, "name": "Alice"},
        {"sub": "100000000000000000002", "email": NOT_ALLOWED, "email_verified": true, "name": "Bob"},
        {"sub": "100000000000000000003", "email": UNVERIFIED, "email_verified": false, "name": "Carol"},
    ]);
    let logs = tempfile::tempdir().unwrap();
    let mut command = node.command("fake-google.mjs");
    command
        .env("FAKE_GOOGLE_PORT", google_port.to_string())
        .env("FAKE_GOOGLE_CLIENT_ID", client_id)
        .env("FAKE_GOOGLE_CLIENT_SECRET", client_secret)
        .env(
            "FAKE_GOOGLE_REDIRECT_URI",
            format!("{our_issuer}/login/oidc/callback"),
        )
        .env("FAKE_GOOGLE_ACCOUNTS", accounts.to_string());
    let mut google = Process::spawn("fake-google", command, logs.path());
    google.wait_until_serving(&format!("{google_issuer}/.well-known/openid-configuration"));

    let stack = Stack::start(&StackOptions {
        oidc_port: Some(oidc_port),
        upstream: Some(UpstreamLogin {
            issuer: google_issuer.clone(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            allowed_emails: vec![ALLOWED.to_owned(), UNVERIFIED.to_owned()],
        }),
        ..StackOptions::default()
    });
    assert_eq!(stack.issuer, our_issuer);

    let mut command = node.command("upstream-login.mjs");
    stack.peer_env(&mut command);
    command
        .env("E2E_UPSTREAM_ISSUER", &google_issuer)
        .env("E2E_ALLOWED_EMAIL", ALLOWED)
        .env("E2E_NOT_ALLOWED_EMAIL", NOT_ALLOWED)
        .env("E2E_UNVERIFIED_EMAIL", UNVERIFIED);
    let run = run_peer(
        "upstream-login (oidc-provider + openid-client)",
        command,
        &[&|| stack.log_tails(), &|| google.log_tail(30)],
    );

    let signed_in = run.report("signed in through the oidc-provider upstream");
    assert_eq!(signed_in["email"], ALLOWED);
    assert_eq!(
        signed_in["pages"],
        json!(["Sign in - Fake Google", "Allow access?"])
    );
    run.report("the federated subject is stable");
    run.report("prompt=login is passed upstream");
    assert_eq!(
        run.report(&format!("refused {NOT_ALLOWED}"))["title"],
        "Account not allowed"
    );
    assert_eq!(
        run.report(&format!("refused {UNVERIFIED}"))["title"],
        "Email not verified"
    );
}

#[test]
fn openid_client_relying_party() {
    let stack = Stack::start(&StackOptions {
        password_login: true,
        ..StackOptions::default()
    });
    suites::openid_client_relying_party(&stack);
}

#[test]
fn jose_verifies_tokens_and_mcp_refuses_forgeries() {
    let other_resource = format!("http://127.0.0.1:{}/other", free_port());
    let stack = Stack::start(&StackOptions {
        password_login: true,
        extra_resources: vec![other_resource.clone()],
        ..StackOptions::default()
    });
    suites::jose_verifies_tokens_and_mcp_refuses_forgeries(&stack, &other_resource);
}

/// Revocation at oidc-server reaches mcp-server through the Token Status List, with the
/// default settings of both servers: each way of revoking a grant makes mcp-server refuse
/// its unexpired access tokens within 30 s (the status list's `ttl`, 10 s, plus a fetch).
#[test]
fn revocation_reaches_mcp_server_within_30_seconds() {
    let stack = Stack::start(&StackOptions {
        password_login: true,
        ..StackOptions::default()
    });
    suites::revocation_reaches_mcp_server(&stack);
}

#[test]
fn python_mcp_sdk_oauth_and_tools() {
    let stack = Stack::start(&StackOptions {
        password_login: true,
        ..StackOptions::default()
    });
    suites::python_mcp_sdk(&stack);
}

#[test]
fn typescript_mcp_sdk_oauth_and_tools() {
    let stack = Stack::start(&StackOptions {
        password_login: true,
        ..StackOptions::default()
    });
    suites::typescript_mcp_sdk(&stack);
}

#[test]
fn chromium_signs_in_and_consents() {
    let stack = Stack::start(&StackOptions {
        password_login: true,
        ..StackOptions::default()
    });
    let shots = screenshot_dir();
    // Fresh every run, so a stale screenshot (a failure-*.png above all) never misleads. Only
    // this test's files: the folders beside them belong to tests that may be running now.
    remove_files_in(&shots);
    suites::chromium_signs_in_and_consents(&stack, &shots);
    println!("screenshots in {}", shots.display());
}

/// The memory page (`/app/` on mcp-server) in a real browser, against the stack started as a
/// person starts it (`stack`, which registers the page's client) with two local users; the
/// scenario is in `tests/e2e/node/memory-page.mjs`. On a desktop and a phone viewport: Alice
/// signs in through the login and consent pages; the MCP TypeScript SDK (its own client and
/// grant) adds her memories and reads one; in the page she searches (`<mark>`), sees the
/// SDK's read in a memory's access log, edits, deletes one, deletes two selected, exports,
/// deletes everything (typed confirmation), imports the export back, and revokes the SDK's
/// access on the apps page, after which the SDK's next call is refused within 30 s. Bob sees
/// none of it by any route, and his actions on her ids change nothing. Every state-changing
/// POST from another origin, or without the CSRF field, is refused with 403 and changes
/// nothing. No console errors or CSP violations; axe-core finds nothing serious or critical.
#[test]
fn memory_page_in_chromium() {
    let stack = OneCommandStack::start();
    suites::memory_page_in_chromium(&stack, &screenshot_dir().join("memory-page"));
}

/// Removes the files (not the folders) in `dir`.
fn remove_files_in(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Examples schemathesis generates per operation and phase: enough to reach every limit the
/// document states, few enough to finish in about two minutes on two cores.
const SCHEMATHESIS_MAX_EXAMPLES: u32 = 10;

#[test]
fn schemathesis_finds_no_failures_in_the_rest_api() {
    let python = python_peers();
    // A fuzzer sends far faster than a person: with the default per-user limit most of its
    // requests would be 429s (documented, but leaving the API's logic untested). The limit
    // stays in the path, set beyond what the run can reach; tests/server.rs in mcp-api
    // checks the limit itself.
    let stack = Stack::start(&StackOptions {
        password_login: true,
        mcp_rate_limit: Some(100_000),
        ..StackOptions::default()
    });
    let token = access_token(&stack, "openid email profile memories:read memories:write");
    let seed = std::env::var("E2E_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261206".to_owned());
    let mut command = python.command("schemathesis_rest_api.py");
    stack.peer_env(&mut command);
    command
        .env("E2E_ACCESS_TOKEN", &token)
        .env(
            "E2E_SCHEMATHESIS_MAX_EXAMPLES",
            SCHEMATHESIS_MAX_EXAMPLES.to_string(),
        )
        .env("E2E_SCHEMATHESIS_SEED", &seed)
        .env("E2E_REPORT_DIR", target_dir().join("e2e/schemathesis"));
    let run = run_peer("schemathesis", command, &[&|| stack.log_tails()]);

    let served = run.report("the OpenAPI document is served");
    let tested = run.report("found no failures");
    assert_eq!(
        tested["operations_tested"], served["operations"],
        "{tested}"
    );
    assert!(served["operations"].as_u64().unwrap() >= 12, "{served}");
}

/// An access token as the provider issues it (RS256 with its current signing key, `typ`
/// `at+jwt`, `aud` the MCP resource), for a client and user of its own.
fn access_token(stack: &Stack, scope: &str) -> String {
    let (kid, pem) = stack.signing_key();
    let key = SigningKey::from_pem(&pem).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
    let claims = json!({
        "iss": stack.issuer,
        "aud": stack.mcp_url,
        "sub": "schemathesis-user",
        "client_id": "schemathesis",
        "scope": scope,
        "iat": now,
        "exp": now + 3600,
        "jti": format!("e2e-schemathesis-{now}"),
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign_rs256(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}
