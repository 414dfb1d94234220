//! End-to-end: the seed's deployment behind a real path-filtering reverse proxy.
//!
//! The seed puts Cloudflare Access in front of the MCP host and lets only four paths
//! through (`/openapi.json`, `/mcp/sse`, `/api/v1/memories/*`, `/health`; path rules cover
//! sub-paths), while the OIDC host is public. This test starts Debian's nginx that way (one
//! server block for each host, everything else on the MCP host answered `403` by nginx),
//! starts our servers with the proxy's URLs as their public base URLs, checks that the
//! proxy really filters, and then lets the official MCP Python SDK play the seed's ChatGPT
//! connector through it (`tests/e2e/python/mcp_sse_behind_proxy.py`): server URL
//! `{proxy}/mcp/sse`, OAuth, scopes `openid email profile`, then `memories:read` only,
//! then the REST API.
//!
//! nginx is `/usr/sbin/nginx`, `nginx` on `PATH` or `E2E_NGINX`; when it is missing and the
//! test runs as root with `apt-get`, it installs Debian's `nginx-light` (the image's
//! `policy-rc.d` or the lack of an init system keeps the packaged service from starting;
//! this test never uses it). nginx runs in the foreground from a temporary prefix with its
//! own configuration, logs and pid file, as the current user.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

mod common;
// Shared with `e2e.rs`, which uses the parts this test does not.
#[allow(dead_code)]
mod e2e_support;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use common::free_port;
use e2e_support::{
    Process, Stack, StackOptions, debian_program, is_root, python_peers, run_peer, tail,
};

/// The seed's public paths on the MCP host, as nginx locations: exact matches for the two
/// documents, and each of the two prefixes with and without its sub-paths.
const PUBLIC_LOCATIONS: [&str; 6] = [
    "= /openapi.json",
    "= /health",
    "= /mcp/sse",
    "^~ /mcp/sse/",
    "= /api/v1/memories",
    "^~ /api/v1/memories/",
];

#[test]
fn chatgpt_sse_connector_through_a_path_filtering_proxy() {
    let nginx = debian_program("nginx", "nginx-light", "E2E_NGINX");
    let python = python_peers();
    let (oidc_port, mcp_port) = (free_port(), free_port());
    let proxy = NginxProxy::start(&nginx, mcp_port, oidc_port);
    let stack = Stack::start(&StackOptions {
        oidc_port: Some(oidc_port),
        mcp_port: Some(mcp_port),
        public_urls: Some((proxy.oidc_url.clone(), proxy.mcp_url.clone())),
        password_login: true,
        ..StackOptions::default()
    });
    assert_eq!(stack.issuer, proxy.oidc_url);
    assert_eq!(stack.mcp_url, format!("{}/mcp", proxy.mcp_url));

    check_the_proxy_filters(&proxy, mcp_port);

    let mut command = python.command("mcp_sse_behind_proxy.py");
    stack.peer_env(&mut command);
    let run = run_peer(
        "python mcp SDK as the seed's ChatGPT connector, behind nginx",
        command,
        &[&|| stack.log_tails(), &|| proxy.log_tails()],
    );

    let seed = run.report("seed configuration");
    assert_eq!(seed["requested"], "openid email profile", "{seed}");
    assert_eq!(seed["aud"], stack.mcp_url.as_str(), "{seed}");
    let granted = seed["scope_claim"].as_str().unwrap_or_default();
    assert!(
        granted.contains("memories:read") && granted.contains("memories:write"),
        "{seed}"
    );
    println!(
        "  the SDK on its own would have requested {}; it requested {}; granted {}",
        seed["sdk_would_request"], seed["requested"], seed["scope_claim"]
    );
    let on_mcp_host: Vec<&str> = seed["mcp_host_requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "GET /mcp/sse",
        "GET /mcp/sse/oauth-protected-resource",
        "POST /mcp/sse/messages",
    ] {
        assert!(
            on_mcp_host.contains(&expected),
            "{expected} missing from {on_mcp_host:?}"
        );
    }
    run.report("REST through the proxy");
    let read_only = run.report("read-only connector");
    assert_eq!(read_only["requested"], "memories:read", "{read_only}");
    let granted = read_only["scope_claim"].as_str().unwrap_or_default();
    assert!(
        granted.contains("memories:read") && !granted.contains("memories:write"),
        "{read_only}"
    );

    // The SDK's traffic really went through nginx, and nothing it sent was refused there.
    let access = proxy.access_log();
    for line in ["\"GET /mcp/sse HTTP/1.1\" 200", "\"POST /mcp/sse/messages?"] {
        assert!(
            access.contains(line),
            "{line} not in the access log:\n{access}"
        );
    }
}

/// The proxy answers 403 itself outside the four paths (the servers would answer 401 or
/// 404), passes the four, and serves discovery for the SSE connector inside them.
fn check_the_proxy_filters(proxy: &NginxProxy, mcp_port: u16) {
    let direct = format!("127.0.0.1:{mcp_port}");
    assert_eq!(
        raw_request(&direct, "GET", "/mcp").status,
        401,
        "mcp-server itself answers /mcp with a challenge"
    );
    let blocked = [
        ("GET", "/mcp"),
        ("POST", "/mcp"),
        ("GET", "/mcp/messages?session_id=x"),
        ("POST", "/mcp/messages?session_id=x"),
        ("GET", "/.well-known/oauth-protected-resource"),
        ("GET", "/.well-known/oauth-protected-resource/mcp"),
        ("GET", "/.well-known/oauth-protected-resource/mcp/sse"),
        ("GET", "/api/v1/stats/"),
        ("GET", "/api/v1/memoriesx"),
        ("GET", "/mcp/ssex"),
        ("GET", "/"),
        ("GET", "/mcp/sse/../../mcp"),
        ("GET", "/mcp/sse/%2e%2e/%2e%2e/api/v1/stats/"),
        ("GET", "/api/v1/memories/../stats/"),
    ];
    for (method, path) in blocked {
        let answer = raw_request(&proxy.mcp_addr, method, path);
        assert_eq!(answer.status, 403, "{method} {path} through the proxy");
        assert!(
            answer.head.to_ascii_lowercase().contains("server: nginx"),
            "{method} {path}: the 403 comes from nginx\n{}",
            answer.head
        );
    }

    for (path, status) in [
        ("/health", 200),
        ("/openapi.json", 200),
        ("/mcp/sse", 401),
        ("/mcp/sse/messages?session_id=x", 401),
        ("/mcp/sse/oauth-protected-resource", 200),
        ("/api/v1/memories", 401),
        ("/api/v1/memories/", 401),
    ] {
        let method = if path.contains("messages") {
            "POST"
        } else {
            "GET"
        };
        let answer = raw_request(&proxy.mcp_addr, method, path);
        assert_eq!(answer.status, status, "{method} {path} through the proxy");
    }

    let challenge = raw_request(&proxy.mcp_addr, "GET", "/mcp/sse");
    let expected = format!(
        "www-authenticate: Bearer resource_metadata=\"{}/mcp/sse/oauth-protected-resource\"",
        proxy.mcp_url
    );
    assert!(
        challenge
            .head
            .to_ascii_lowercase()
            .contains(&expected.to_ascii_lowercase()),
        "the SSE challenge points inside /mcp/sse:\n{}",
        challenge.head
    );
    let metadata: Value = serde_json::from_str(
        &raw_request(&proxy.mcp_addr, "GET", "/mcp/sse/oauth-protected-resource").body,
    )
    .unwrap();
    assert_eq!(metadata["resource"], format!("{}/mcp", proxy.mcp_url));
    assert_eq!(metadata["authorization_servers"], json!([proxy.oidc_url]));

    // The OIDC host is public: everything passes.
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks.json",
    ] {
        assert_eq!(
            raw_request(&proxy.oidc_addr, "GET", path).status,
            200,
            "{path} on the OIDC host"
        );
    }
    println!(
        "nginx: {} paths outside the four refused with 403, the four and the OIDC host passed",
        blocked.len()
    );
}

/// nginx in the foreground with its own prefix, configuration, logs and pid file.
struct NginxProxy {
    /// `http://127.0.0.1:<port>`: the MCP host (the four paths).
    mcp_url: String,
    mcp_addr: String,
    /// `http://127.0.0.1:<port>`: the OIDC host (everything).
    oidc_url: String,
    oidc_addr: String,
    process: Process,
    dir: tempfile::TempDir,
}

impl NginxProxy {
    fn start(nginx: &Path, mcp_backend: u16, oidc_backend: u16) -> NginxProxy {
        let dir = tempfile::Builder::new()
            .prefix("e2e-nginx-")
            .tempdir()
            .unwrap();
        let (mcp_port, oidc_port) = (free_port(), free_port());
        let conf = dir.path().join("nginx.conf");
        fs::write(
            &conf,
            nginx_config(
                nginx,
                dir.path(),
                mcp_port,
                mcp_backend,
                oidc_port,
                oidc_backend,
            ),
        )
        .unwrap();
        let mut test = Command::new(nginx);
        test.arg("-t").args(nginx_args(dir.path(), &conf));
        let output = test.output().unwrap();
        assert!(
            output.status.success(),
            "nginx -t refused the configuration:\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            fs::read_to_string(&conf).unwrap_or_default()
        );
        let mut command = Command::new(nginx);
        command.args(nginx_args(dir.path(), &conf));
        let mut process = Process::spawn("nginx", command, dir.path());
        let mcp_url = format!("http://127.0.0.1:{mcp_port}");
        let oidc_url = format!("http://127.0.0.1:{oidc_port}");
        process.wait_until_serving(&format!("{mcp_url}/health"));
        process.wait_until_serving(&format!("{oidc_url}/"));
        NginxProxy {
            mcp_addr: format!("127.0.0.1:{mcp_port}"),
            oidc_addr: format!("127.0.0.1:{oidc_port}"),
            mcp_url,
            oidc_url,
            process,
            dir,
        }
    }

    fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn log_tails(&self) -> String {
        let error = fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
        format!(
            "{}\n--- nginx access.log ---\n{}\n--- nginx error.log ---\n{}",
            self.process.log_tail(20),
            tail(&self.access_log(), 40),
            tail(&error, 40)
        )
    }
}

fn nginx_args(prefix: &Path, conf: &Path) -> Vec<String> {
    vec![
        "-p".to_owned(),
        format!("{}/", prefix.display()),
        "-e".to_owned(),
        prefix.join("error.log").display().to_string(),
        "-c".to_owned(),
        conf.display().to_string(),
    ]
}

/// The configuration: the MCP host passes the seed's four paths and refuses the rest; the
/// OIDC host passes everything. No buffering (SSE), `Host` passed on, every temporary
/// path inside `prefix`.
fn nginx_config(
    nginx: &Path,
    prefix: &Path,
    mcp_port: u16,
    mcp_backend: u16,
    oidc_port: u16,
    oidc_backend: u16,
) -> String {
    let p = prefix.display();
    let mut conf = String::new();
    // As root, nginx would switch its worker to `nobody`, who cannot use the temp dir.
    if is_root() {
        conf.push_str("user root root;\n");
    }
    let _ = write!(
        conf,
        "worker_processes 1;\ndaemon off;\npid {p}/nginx.pid;\nerror_log {p}/error.log info;\n\
         events {{ worker_connections 128; }}\n\
         http {{\n\
         \x20   access_log {p}/access.log;\n\
         \x20   client_body_temp_path {p}/client_body;\n\
         \x20   proxy_temp_path {p}/proxy;\n"
    );
    // Modules with compiled-in temp paths create them at start; keep them inside the prefix.
    let configure = nginx_configure_arguments(nginx);
    for module in ["fastcgi", "uwsgi", "scgi"] {
        if configure.contains(&format!("--http-{module}-temp-path"))
            && !configure.contains(&format!("--without-http_{module}_module"))
        {
            let _ = writeln!(conf, "    {module}_temp_path {p}/{module};");
        }
    }
    conf.push_str(
        "    proxy_http_version 1.1;\n\
         \x20   proxy_set_header Connection \"\";\n\
         \x20   proxy_set_header Host $http_host;\n\
         \x20   proxy_buffering off;\n\
         \x20   proxy_request_buffering off;\n\
         \x20   proxy_read_timeout 1h;\n",
    );
    let _ = writeln!(
        conf,
        "    server {{\n        listen 127.0.0.1:{mcp_port};\n        server_name mcp;"
    );
    for location in PUBLIC_LOCATIONS {
        let _ = writeln!(
            conf,
            "        location {location} {{ proxy_pass http://127.0.0.1:{mcp_backend}; }}"
        );
    }
    conf.push_str("        location / { return 403; }\n    }\n");
    let _ = writeln!(
        conf,
        "    server {{\n        listen 127.0.0.1:{oidc_port};\n        server_name oidc;\n        \
         location / {{ proxy_pass http://127.0.0.1:{oidc_backend}; }}\n    }}\n}}"
    );
    conf
}

fn nginx_configure_arguments(nginx: &Path) -> String {
    let output = Command::new(nginx).arg("-V").output().unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout)
}

/// One HTTP/1.1 exchange with the exact request target given (no client-side path
/// normalisation, so traversal attempts reach nginx as written).
struct RawAnswer {
    status: u16,
    head: String,
    body: String,
}

fn raw_request(addr: &str, method: &str, target: &str) -> RawAnswer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = if method == "POST" { "{}" } else { "" };
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json, text/event-stream\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawAnswer {
        status,
        head: head.to_owned(),
        body: dechunk(head, body),
    }
}

/// The body of a `Transfer-Encoding: chunked` answer, joined; other bodies as they are.
fn dechunk(head: &str, body: &str) -> String {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}
