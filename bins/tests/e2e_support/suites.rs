//! Scenarios run against any deployment of our servers: one process each
//! ([`Stack`](super::Stack)) or replicas behind a load balancer ([`Cluster`](super::cluster::Cluster)).
//! Each runs a peer script we did not write the library of and checks what it reported.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::{
    Cluster, OneCommandStack, Stack, chromium, node_peers, python_peers, run_peer, run_peer_within,
};

/// Where the peers find the servers.
pub(crate) trait Deployment {
    /// Puts the servers' URLs and the first user into a peer's environment.
    fn peer_env(&self, command: &mut Command);
    /// The servers' log tails, for failure messages.
    fn log_tails(&self) -> String;
    /// The MCP endpoint (the access tokens' audience).
    fn mcp_url(&self) -> &str;
    /// The provider's current signing key from its store: `(kid, PKCS#8 PEM)`.
    fn signing_key(&self) -> (String, String);
}

impl Deployment for Stack {
    fn peer_env(&self, command: &mut Command) {
        Stack::peer_env(self, command);
    }
    fn log_tails(&self) -> String {
        Stack::log_tails(self)
    }
    fn mcp_url(&self) -> &str {
        &self.mcp_url
    }
    fn signing_key(&self) -> (String, String) {
        Stack::signing_key(self)
    }
}

impl Deployment for OneCommandStack {
    fn peer_env(&self, command: &mut Command) {
        OneCommandStack::peer_env(self, command);
    }
    fn log_tails(&self) -> String {
        OneCommandStack::log_tails(self)
    }
    fn mcp_url(&self) -> &str {
        &self.mcp_url
    }
    fn signing_key(&self) -> (String, String) {
        OneCommandStack::signing_key(self)
    }
}

impl Deployment for Cluster {
    fn peer_env(&self, command: &mut Command) {
        Cluster::peer_env(self, command);
    }
    fn log_tails(&self) -> String {
        Cluster::log_tails(self)
    }
    fn mcp_url(&self) -> &str {
        &self.mcp_url
    }
    fn signing_key(&self) -> (String, String) {
        Cluster::signing_key(self)
    }
}

/// npm `openid-client` (a certified relying party): discovery, dynamic registration, the
/// code flow with PKCE, userinfo, refresh rotation and reuse detection, revocation and
/// introspection, for each client authentication method.
pub(crate) fn openid_client_relying_party(deployment: &dyn Deployment) {
    let node = node_peers();
    let mut command = node.command("openid-client-rp.mjs");
    deployment.peer_env(&mut command);
    let run = run_peer("openid-client", command, &[&|| deployment.log_tails()]);

    for method in ["client_secret_basic", "client_secret_post", "none"] {
        run.report(&format!("{method}: discovery and dynamic registration"));
        let flow = run.report(&format!("{method}: authorization code + PKCE S256"));
        assert_eq!(
            flow["pages"],
            json!(["Sign in", "Allow access?"]),
            "{method}"
        );
        assert!(
            flow["scope"].as_str().unwrap().contains("memories:write"),
            "{method}: {flow}"
        );
        assert_eq!(
            run.report(&format!("{method}: userinfo"))["email"],
            super::EMAIL
        );
        run.report(&format!("{method}: refresh rotates the refresh token"));
        run.report(&format!("{method}: reuse detection"));
        run.report(&format!("{method}: revocation"));
        run.report(&format!("{method}: revoking an access token"));
    }
    run.report("client_secret_basic: introspection");
    run.report("client_secret_post: introspection");
    run.report("a wrong client secret is refused with invalid_client");
    run.report("max_age: the ID token carries auth_time");
}

/// npm `jose`: it verifies our access and ID tokens against the JWKS, and mcp-server
/// accepts the real token and refuses every forgery jose makes with `401 invalid_token`.
/// `other_resource` must be a resource the provider issues tokens for.
pub(crate) fn jose_verifies_tokens_and_mcp_refuses_forgeries(
    deployment: &dyn Deployment,
    other_resource: &str,
) {
    let node = node_peers();
    let (kid, pem) = deployment.signing_key();
    let mut command = node.command("jose-tokens.mjs");
    deployment.peer_env(&mut command);
    command
        .env("E2E_OTHER_RESOURCE", other_resource)
        .env("E2E_SIGNING_KID", &kid)
        .env("E2E_SIGNING_KEY_PEM", &pem);
    let run = run_peer("jose", command, &[&|| deployment.log_tails()]);

    let access = run.report("jose verified an access token");
    assert_eq!(access["kid"], kid.as_str());
    assert_eq!(access["aud"], deployment.mcp_url());
    run.report("jose verified an ID token");
    run.report("the JWKS publishes the signing key");
    run.report("mcp-server accepts the issued access token");
    let refused: Vec<&Value> = run
        .verified()
        .filter(|r| {
            r["verified"]
                .as_str()
                .unwrap()
                .starts_with("mcp-server refused: ")
        })
        .collect();
    for forgery in [
        "alg none",
        "HS256 keyed with our public key",
        "a key not in the JWKS, with our kid",
        "wrong aud",
        "a real token for another resource",
        "wrong iss",
        "expired",
        "an ID token used as an access token",
        "unknown crit header",
    ] {
        let report = refused
            .iter()
            .find(|r| r["verified"].as_str().unwrap().contains(forgery))
            .unwrap_or_else(|| panic!("no refusal reported for {forgery}"));
        assert_eq!(report["status"], 401, "{forgery}");
        assert!(
            report["challenge"]
                .as_str()
                .unwrap()
                .contains("error=\"invalid_token\""),
            "{forgery}: {report}"
        );
    }
}

/// PyPI `mcp` (the official Python SDK): OAuth, then the tools over Streamable HTTP, with
/// automatic protocol negotiation, and over the legacy SSE transport.
pub(crate) fn python_mcp_sdk(deployment: &dyn Deployment) {
    let python = python_peers();
    let mut command = python.command("mcp_oauth_client.py");
    deployment.peer_env(&mut command);
    let run = run_peer("python mcp SDK", command, &[&|| deployment.log_tails()]);

    let streamable = run.report("and the tools over Streamable HTTP");
    assert_eq!(streamable["pages"], json!(["Sign in", "Allow access?"]));
    assert!(
        streamable["memory_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "{streamable}"
    );
    assert!(
        streamable["scope"]
            .as_str()
            .unwrap()
            .contains("memories:write"),
        "{streamable}"
    );
    let auto = run.report("auto protocol negotiation");
    assert_eq!(auto["protocol_version"], "2026-07-28", "{auto}");
    let sse = run.report("over the legacy SSE transport");
    assert_ne!(sse["memory_id"], streamable["memory_id"]);
}

/// npm `@modelcontextprotocol/sdk`: OAuth through its auth provider, then the tools over
/// Streamable HTTP.
pub(crate) fn typescript_mcp_sdk(deployment: &dyn Deployment) {
    let node = node_peers();
    let mut command = node.command("mcp-sdk-client.mjs");
    deployment.peer_env(&mut command);
    let run = run_peer("typescript mcp SDK", command, &[&|| deployment.log_tails()]);

    let auth = run.report("OAuth through its auth provider");
    assert_eq!(auth["pages"], json!(["Sign in", "Allow access?"]));
    let tools = run.report("add_memories, search, fetch, search_memory over Streamable HTTP");
    assert!(
        tools["memory_id"].as_str().is_some_and(|id| id.len() == 36),
        "{tools}"
    );
}

/// Debian's Chromium driven by npm `playwright-core`: the login and consent pages on a
/// desktop and a phone viewport, with screenshots in `shots`.
pub(crate) fn chromium_signs_in_and_consents(deployment: &dyn Deployment, shots: &Path) {
    let browser = chromium();
    let node = node_peers();
    let mut command = node.command("browser-login.mjs");
    deployment.peer_env(&mut command);
    command
        .env("E2E_CHROMIUM", &browser)
        .env("E2E_SCREENSHOT_DIR", shots);
    let run = run_peer(
        "chromium (playwright-core)",
        command,
        &[&|| deployment.log_tails()],
    );

    for device in ["desktop", "phone"] {
        let report = run.report(&format!("chromium ({device})"));
        for shot in report["screenshots"].as_array().unwrap() {
            let path = shots.join(shot.as_str().unwrap());
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(
                size > 1000,
                "screenshot {} is missing or empty",
                path.display()
            );
        }
    }
}

/// The most a revocation may take to reach mcp-server: the status list's `ttl` (10 s) plus
/// a fetch, with room.
pub(crate) const REVOCATION_BOUND_MS: u64 = 30_000;

/// npm `openid-client`: each way of revoking a grant makes mcp-server refuse its unexpired
/// access tokens within [`REVOCATION_BOUND_MS`], through the Token Status List.
pub(crate) fn revocation_reaches_mcp_server(deployment: &dyn Deployment) {
    let node = node_peers();
    let mut command = node.command("revocation.mjs");
    deployment.peer_env(&mut command);
    let run = run_peer("revocation", command, &[&|| deployment.log_tails()]);

    for way in [
        "revoking the refresh token",
        "refresh-token reuse",
        "revoking the access token",
    ] {
        let report = run.report(way);
        let latency = report["latency_ms"].as_u64().unwrap();
        println!("{way}: refused by mcp-server after {latency} ms");
        assert!(latency <= REVOCATION_BOUND_MS, "{way}: {report}");
        let challenge = report["challenge"].as_str().unwrap();
        assert!(
            challenge.contains("error=\"invalid_token\"") && challenge.contains("revoked"),
            "{way}: {challenge}"
        );
    }
    // Reuse revokes the whole family: its first access token is refused within the bound too.
    let reuse = run.report("refresh-token reuse");
    let first = reuse["first_token_latency_ms"].as_u64().unwrap();
    assert!(first <= REVOCATION_BOUND_MS, "{reuse}");
    run.report("a grant that was not revoked keeps working");
}

/// How long the memory page's scenario may run: two viewports, each with a wait for a
/// revocation to reach mcp-server (about 10 s, at most 30 s).
const MEMORY_PAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The memory page (`/app/`) in Debian's Chromium with the MCP TypeScript SDK and axe-core,
/// on a desktop and a phone viewport (`tests/e2e/node/memory-page.mjs`): Alice signs in,
/// the SDK adds memories and reads one, she searches, edits, deletes, exports, imports and
/// revokes the SDK's access (refused within [`REVOCATION_BOUND_MS`]); Bob sees and changes
/// none of it; forged posts are refused; axe-core finds nothing serious. The deployment
/// must serve the page and know both users.
pub(crate) fn memory_page_in_chromium(deployment: &dyn Deployment, shots: &Path) {
    let browser = chromium();
    let node = node_peers();
    let _ = std::fs::remove_dir_all(shots);
    let mut command = node.command("memory-page.mjs");
    deployment.peer_env(&mut command);
    command
        .env("E2E_CHROMIUM", &browser)
        .env("E2E_SCREENSHOT_DIR", shots);
    let run = run_peer_within(
        "memory page (chromium, MCP TypeScript SDK, axe-core)",
        command,
        &[&|| deployment.log_tails()],
        MEMORY_PAGE_TIMEOUT,
    );

    for device in ["desktop", "phone"] {
        let signed_in = run.report(&format!("{device}: alice signed in"));
        assert!(
            signed_in["pages"]
                .as_array()
                .unwrap()
                .contains(&json!("Sign in")),
            "{signed_in}"
        );
        let sdk = run.report(&format!("{device}: the MCP TypeScript SDK added"));
        let sdk_client = sdk["client_id"].as_str().unwrap();
        let marks = run.report(&format!("{device}: search marks"));
        assert!(!marks["marks"].as_array().unwrap().is_empty(), "{marks}");
        let log = run.report(&format!("{device}: the access log shows"));
        assert!(log["row"].as_str().unwrap().contains("fetch"), "{log}");
        for step in [
            "edited and saved",
            "deleted one memory",
            "deleted two selected",
            "exported",
            "deleted everything",
            "imported the export back",
            "bob sees none of alice's memories",
            "bob's actions on alice's ids change nothing",
        ] {
            run.report(&format!("{device}: {step}"));
        }
        let csrf = run.report(&format!("{device}: CSRF"));
        let refusals = csrf["refusals"].as_array().unwrap();
        assert!(refusals.len() >= 18, "{csrf}");
        for refusal in refusals {
            assert_eq!(refusal["status"], 403, "{refusal}");
        }
        let revoked = run.report(&format!("{device}: revoking the SDK's access"));
        assert_eq!(revoked["client_id"], sdk_client, "{revoked}");
        let latency = revoked["latency_ms"].as_u64().unwrap();
        println!("{device}: the revocation reached mcp-server after {latency} ms");
        assert!(latency <= REVOCATION_BOUND_MS, "{revoked}");
        let axe = run.report(&format!("{device}: axe-core"));
        for (page, counts) in axe["pages"].as_object().unwrap() {
            println!("{device}: axe-core on {page}: {counts}");
            assert_eq!(counts["serious"], 0, "{device} {page}: {axe}");
            assert_eq!(counts["critical"], 0, "{device} {page}: {axe}");
        }
        let clean = run.report(&format!("{device}: no console errors"));
        for shot in clean["screenshots"].as_array().unwrap() {
            let path = shots.join(shot.as_str().unwrap());
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(
                size > 1000,
                "screenshot {} is missing or empty",
                path.display()
            );
            println!("screenshot: {}", path.display());
        }
    }
}
