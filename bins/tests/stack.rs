//! The one-command stack as a process: first start creates the admin user and prints its
//! password once, both servers answer and know each other, Ctrl-C stops both, and a second
//! start reuses the data and keys.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;
use common::{free_port, get};

struct Stack {
    child: Child,
    banner: String,
}

impl Stack {
    /// Starts the stack in `dir` and reads its banner up to "Press Ctrl-C to stop."
    fn start(dir: &std::path::Path, oidc_port: u16, mcp_port: u16) -> Stack {
        let mut command = stack_command(dir);
        command
            .env("STACK_OIDC_PORT", oidc_port.to_string())
            .env("STACK_MCP_PORT", mcp_port.to_string());
        Stack::spawn(&mut command)
    }

    /// Spawns `command` and reads its banner up to "Press Ctrl-C to stop."
    fn spawn(command: &mut Command) -> Stack {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut banner = String::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in &mut lines {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("Press Ctrl-C to stop.") {
                break;
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Stack { child, banner }
    }

    fn interrupt(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("stack did not stop after SIGINT");
    }
}

/// The stack binary in `dir`, with none of its settings from the caller's environment.
fn stack_command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stack"));
    command
        .current_dir(dir)
        .env_remove("STACK_DATA_DIR")
        .env_remove("STACK_OIDC_PORT")
        .env_remove("STACK_MCP_PORT")
        .env_remove("STACK_CONFIG")
        .env("RUST_LOG", "warn");
    command
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_starts_both_servers_and_a_second_start_reuses_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (oidc_port, mcp_port) = (free_port(), free_port());
    let mut first = Stack::start(dir.path(), oidc_port, mcp_port);
    assert!(
        first
            .banner
            .contains(&format!("http://127.0.0.1:{mcp_port}/mcp")),
        "{}",
        first.banner
    );
    assert!(first.banner.contains("username: admin"), "{}", first.banner);
    let password_line = first
        .banner
        .lines()
        .find(|l| l.contains("password:"))
        .unwrap()
        .to_owned();
    assert!(first.banner.contains("\"mcpServers\""));

    // Both servers answer, and the MCP server trusts the provider's keys.
    let (status, discovery) = get(
        &format!("http://127.0.0.1:{oidc_port}/.well-known/openid-configuration"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(discovery["issuer"], format!("http://127.0.0.1:{oidc_port}"));
    let (status, metadata) = get(
        &format!("http://127.0.0.1:{mcp_port}/.well-known/oauth-protected-resource/mcp"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        metadata["authorization_servers"][0],
        format!("http://127.0.0.1:{oidc_port}")
    );
    let mut healthy = false;
    for _ in 0..100 {
        let (status, health) = get(&format!("http://127.0.0.1:{mcp_port}/health"), None)
            .await
            .unwrap();
        // 200 means the store is open and the provider's keys are loaded; the public
        // answer is only the status (details need MCP_HEALTH_TOKEN).
        if status == 200 && health == serde_json::json!({"status": "ok"}) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "mcp-server never loaded the provider's keys");
    let (_, jwks) = get(&format!("http://127.0.0.1:{oidc_port}/jwks.json"), None)
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].clone();

    assert!(first.interrupt().success());
    let users = std::fs::read_to_string(dir.path().join("data/oidc-server/users.toml")).unwrap();
    assert!(users.contains("$argon2id$"));
    assert!(
        !users.contains(password_line.split_whitespace().last().unwrap()),
        "only the hash is kept"
    );

    let mut second = Stack::start(dir.path(), oidc_port, mcp_port);
    assert!(
        !second.banner.contains("password:"),
        "the password is shown once: {}",
        second.banner
    );
    let (_, jwks) = get(&format!("http://127.0.0.1:{oidc_port}/jwks.json"), None)
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], kid, "keys are kept across restarts");
    assert!(second.interrupt().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_keeps_no_password_nobody_saw() {
    let dir = tempfile::tempdir().unwrap();
    let (oidc_port, mcp_port) = (free_port(), free_port());
    let users = dir.path().join("data/oidc-server/users.toml");

    // The MCP port is taken: the stack fails after creating the users file and binding the
    // provider, and before it could print the password.
    let taken = std::net::TcpListener::bind(("127.0.0.1", mcp_port)).unwrap();
    let output = stack_command(dir.path())
        .env("STACK_OIDC_PORT", oidc_port.to_string())
        .env("STACK_MCP_PORT", mcp_port.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains("password:"), "{stdout}");
    assert!(
        stderr.contains(&format!("listening on 127.0.0.1:{mcp_port}")),
        "{stderr}"
    );
    assert!(
        !users.exists(),
        "a users file whose password was never shown is removed"
    );
    drop(taken);

    let mut second = Stack::start(dir.path(), oidc_port, mcp_port);
    assert!(
        second.banner.contains("username: admin"),
        "{}",
        second.banner
    );
    let password = second
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap()
        .to_owned();
    assert!(users.exists());
    assert!(second.interrupt().success());
    let hash = std::fs::read_to_string(&users)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("password_hash = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    let hash = oidc_core::login::PasswordHashString::parse(&hash).unwrap();
    assert!(
        hash.verify(&password),
        "the printed password is the stored one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_sets_the_ports_and_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (oidc_port, mcp_port) = (free_port(), free_port());
    let config = dir.path().join("stack.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"from-file\"\noidc_port = {oidc_port}\nmcp_port = {mcp_port}\n"),
    )
    .unwrap();
    let mut command = stack_command(dir.path());
    command.arg("--config").arg(&config);
    let mut stack = Stack::spawn(&mut command);
    assert!(
        stack
            .banner
            .contains(&format!("http://127.0.0.1:{mcp_port}/mcp")),
        "{}",
        stack.banner
    );
    let (status, discovery) = get(
        &format!("http://127.0.0.1:{oidc_port}/.well-known/openid-configuration"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(discovery["issuer"], format!("http://127.0.0.1:{oidc_port}"));
    assert!(dir.path().join("from-file/oidc-server/users.toml").exists());
    assert!(stack.interrupt().success());
}

#[test]
fn every_setting_is_documented_in_help() {
    for (binary, variables) in [
        (
            env!("CARGO_BIN_EXE_oidc-server"),
            &[
                "OIDC_BASE_URL",
                "OIDC_LISTEN",
                "OIDC_DATA_DIR",
                "OIDC_DEFAULT_AUDIENCE",
                "OIDC_RESOURCES",
                "OIDC_RESOURCE_SCOPES",
                "OIDC_UPSTREAM_ISSUER",
                "GOOGLE_CLIENT_ID",
                "GOOGLE_CLIENT_SECRET",
                "OIDC_ALLOWED_EMAILS",
                "OIDC_ALLOWED_DOMAINS",
                "OIDC_HOSTED_DOMAINS",
                "OIDC_ALLOW_ANY_USER",
                "OIDC_USERS_FILE",
                "OIDC_ALLOWED_ORIGINS",
                "OIDC_RATE_LIMITS",
                "OIDC_TRUSTED_PROXIES",
                "OIDC_DATABASE_URL",
                "OIDC_DATABASE_POOL",
                "OIDC_CONFIG",
            ][..],
        ),
        (
            env!("CARGO_BIN_EXE_mcp-server"),
            &[
                "MCP_BASE_URL",
                "MCP_LISTEN",
                "OIDC_ISSUER",
                "MCP_DATA_DIR",
                "MCP_ALLOWED_ORIGINS",
                "MCP_JWKS_TTL",
                "MCP_SSE_KEEPALIVE",
                "MCP_DATABASE_URL",
                "MCP_DATABASE_POOL",
                "MCP_CONFIG",
            ][..],
        ),
        (
            env!("CARGO_BIN_EXE_stack"),
            &[
                "STACK_DATA_DIR",
                "STACK_OIDC_PORT",
                "STACK_MCP_PORT",
                "STACK_CONFIG",
            ][..],
        ),
    ] {
        let output = Command::new(binary).arg("--help").output().unwrap();
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        for variable in variables {
            assert!(
                help.contains(&format!("env: {variable}")),
                "{binary} --help lacks {variable}"
            );
        }
    }
}

#[test]
fn hash_password_prints_an_argon2id_hash() {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_oidc-server"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).unwrap();
    let parsed = oidc_core::login::PasswordHashString::parse(hash.trim()).unwrap();
    assert!(parsed.verify("correct horse battery staple"));
    assert!(!parsed.verify("correct horse battery stapler"));
}

#[test]
fn oidc_server_refuses_an_unrestricted_google_login() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_oidc-server"))
        .env("OIDC_DATA_DIR", dir.path())
        .env("OIDC_LISTEN", "127.0.0.1:0")
        .env("GOOGLE_CLIENT_ID", "id.apps.googleusercontent.com")
        .env("GOOGLE_CLIENT_SECRET", "not-a-real-secret")
        .env_remove("OIDC_ALLOW_ANY_USER")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(
        !stderr.contains("not-a-real-secret"),
        "the secret never reaches the output"
    );
}
