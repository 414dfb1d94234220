//! `stack`: oidc-server and mcp-server together on loopback, configured for each other, with
//! a local password user created on first start — the one command from `git clone` to an MCP
//! client adding memories behind a real login.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use clap::Parser;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::config::create_private_dir;
use crate::mcp::{McpArgs, McpServer};
use crate::oidc::{OidcArgs, OidcServer};
use crate::serve::{connections_for_descriptors, descriptor_limit};
use oidc_core::provider::StaticClient;
use oidc_core::redirect::RedirectUri;
use oidc_core::secret::Secret;
use oidc_core::types::ClientId;

/// Runs the OpenID provider and the memory MCP server together on 127.0.0.1, with SQLite
/// files and signing keys in the data directory and a local password login (Google login
/// too when GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET and a restriction such as
/// OIDC_ALLOWED_EMAILS are set).
#[derive(Parser, Debug, Clone)]
#[command(name = "stack", version)]
pub struct StackArgs {
    /// Directory for both servers' data (SQLite files, signing keys, the users file).
    #[arg(long, env = "STACK_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Port of the OpenID provider on 127.0.0.1.
    #[arg(long, env = "STACK_OIDC_PORT", default_value_t = 8766)]
    pub oidc_port: u16,

    /// Port of the memory MCP server on 127.0.0.1.
    #[arg(long, env = "STACK_MCP_PORT", default_value_t = 8765)]
    pub mcp_port: u16,

    /// A TOML file with any of these settings (keys in snake_case, e.g. data_dir).
    #[arg(long, env = "STACK_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The memory page's client id at the stack's provider.
pub const PAGE_CLIENT_ID: &str = "memory-page";

/// What the stack prints for a person to read.
pub struct Banner {
    /// The memory page.
    pub page_url: String,
    /// The MCP endpoint.
    pub mcp_url: String,
    /// The OpenID issuer.
    pub issuer: String,
    /// The first user's password, when it was just created (shown once; zeroed on drop).
    pub new_password: Option<Zeroizing<String>>,
    /// The users file.
    pub users_file: PathBuf,
}

impl Banner {
    /// The text: URLs, how to sign in and a ready-to-paste client configuration. It may
    /// hold the new password, so it is zeroed on drop.
    pub fn text(&self) -> Zeroizing<String> {
        let base = self.mcp_url.trim_end_matches("/mcp");
        let sign_in = Zeroizing::new(match &self.new_password {
            Some(password) => format!(
                "  username: admin\n  password: {}\n  (shown once; only its hash is kept, in {})",
                password.as_str(),
                self.users_file.display()
            ),
            None => format!(
                "  with a user from {} (delete the file to create a new admin password)",
                self.users_file.display()
            ),
        });
        let sign_in = sign_in.as_str();
        Zeroizing::new(format!(
            "\nMemory stack is running.\n\n\
             Your memories (web page)      {page}\n\
             MCP server (Streamable HTTP)  {mcp}\n\
             MCP server (legacy SSE)       {base}/mcp/sse\n\
             REST API                      {base}/api/v1/memories/   (OpenAPI: {base}/openapi.json)\n\
             OpenID provider               {issuer}   (discovery: {issuer}/.well-known/openid-configuration)\n\n\
             Sign in at the memory page, or at the login page your MCP client opens:\n{sign_in}\n\n\
             MCP client configuration (Claude Desktop, Cursor, VS Code, …):\n\
             {{\n  \"mcpServers\": {{\n    \"memory\": {{ \"type\": \"http\", \"url\": \"{mcp}\" }}\n  }}\n}}\n\n\
             Or try it with the MCP Inspector: npx @modelcontextprotocol/inspector, then connect to {mcp}\n\n\
             Press Ctrl-C to stop.\n",
            page = self.page_url,
            mcp = self.mcp_url,
            issuer = self.issuer,
        ))
    }
}

/// Creates the users file with an `admin` user and a random password if it does not exist;
/// returns the new password (to show once).
pub fn ensure_first_user(users_file: &Path) -> anyhow::Result<Option<Zeroizing<String>>> {
    if users_file.exists() {
        return Ok(None);
    }
    let password = oidc_core::login::generate_password(&SystemRandom::new())
        .context("generating a password")?;
    let hash = oidc_core::login::hash_password(&password)?;
    let text = format!(
        "# Local password users of the memory stack. Hash new passwords with:\n\
         #   cargo run --release --bin oidc-server -- hash-password\n\
         [[users]]\nusername = \"admin\"\npassword_hash = \"{hash}\"\nname = \"Administrator\"\n"
    );
    write_private(users_file, &text)?;
    Ok(Some(password))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Starts both servers; returns when `shutdown` completes and both have stopped.
///
/// If either server fails to start, a users file created by this call is removed again:
/// its password was never shown, and the next start creates a new one.
pub async fn run(
    args: &StackArgs,
    shutdown: impl std::future::Future<Output = ()>,
    on_ready: impl FnOnce(Banner),
) -> anyhow::Result<()> {
    let oidc_dir = args.data_dir.join("oidc-server");
    let mcp_dir = args.data_dir.join("mcp-server");
    create_private_dir(&oidc_dir)?;
    let users_file = oidc_dir.join("users.toml");
    let new_password = ensure_first_user(&users_file)?;

    // Both servers share this process's file descriptors: each gets half the connections.
    let max_connections = (connections_for_descriptors(descriptor_limit()) / 2).max(1);
    let issuer = format!("http://127.0.0.1:{}", args.oidc_port);
    let mcp_base = format!("http://127.0.0.1:{}", args.mcp_port);
    // The memory page signs in as a confidential client of the provider, with a secret
    // made fresh at every start (its sessions live in memory, so nothing outlives it).
    let page_secret = Secret::generate(&SystemRandom::new()).context("generating a secret")?;
    let page_client = StaticClient::confidential(
        ClientId::parse(PAGE_CLIENT_ID).context("the page's client id")?,
        "Memory page",
        vec![
            RedirectUri::parse(&format!("{mcp_base}/app/callback"))
                .context("the page's redirect URI")?,
        ],
        page_secret.to_hash(),
    )
    .with_account_access();
    let mut oidc_args = OidcArgs::parse_from([
        "oidc-server".into(),
        format!("--base-url={issuer}"),
        format!("--listen=127.0.0.1:{}", args.oidc_port),
        format!("--data-dir={}", oidc_dir.display()),
        format!("--users-file={}", users_file.display()),
        format!("--default-audience={mcp_base}/mcp"),
        format!("--max-connections={max_connections}"),
    ]);
    oidc_args.extra_clients.push(page_client);
    let mcp_args = McpArgs::parse_from([
        "mcp-server".into(),
        format!("--base-url={mcp_base}"),
        format!("--listen=127.0.0.1:{}", args.mcp_port),
        format!("--issuer={issuer}"),
        format!("--data-dir={}", mcp_dir.display()),
        format!("--max-connections={max_connections}"),
        format!("--app-client-id={PAGE_CLIENT_ID}"),
        format!("--app-client-secret={}", page_secret.expose_secret()),
    ]);

    let (stop, stopping) = watch::channel(false);
    let (oidc_task, mcp_task) = match start(&oidc_args, &mcp_args, &stopping).await {
        Ok(tasks) => tasks,
        Err(error) => {
            if new_password.is_some() {
                forget_first_user(&users_file);
            }
            return Err(error);
        }
    };

    on_ready(Banner {
        page_url: format!("{mcp_base}/app/"),
        mcp_url: format!("{mcp_base}/mcp"),
        issuer,
        new_password,
        users_file,
    });
    shutdown.await;
    let _ = stop.send(true);
    let (oidc_result, mcp_result) = tokio::join!(oidc_task, mcp_task);
    oidc_result.context("oidc-server task")??;
    mcp_result.context("mcp-server task")??;
    Ok(())
}

type ServerTask = JoinHandle<anyhow::Result<()>>;

/// Binds and spawns both servers, which stop when `stopping` turns true.
async fn start(
    oidc_args: &OidcArgs,
    mcp_args: &McpArgs,
    stopping: &watch::Receiver<bool>,
) -> anyhow::Result<(ServerTask, ServerTask)> {
    let oidc = OidcServer::bind(oidc_args).await?;
    let mcp = McpServer::bind(mcp_args).await?;
    let oidc_task = tokio::spawn(oidc.run(wait(stopping.clone())));
    let mcp_task = tokio::spawn(mcp.run(wait(stopping.clone())));
    Ok((oidc_task, mcp_task))
}

/// Removes a users file whose password nobody saw.
fn forget_first_user(users_file: &Path) {
    match std::fs::remove_file(users_file) {
        Ok(()) => tracing::info!(
            file = %users_file.display(),
            "removed the new users file: its password was never shown"
        ),
        Err(error) => tracing::warn!(
            %error,
            file = %users_file.display(),
            "could not remove the users file whose password was never shown; delete it to get a new one"
        ),
    }
}

async fn wait(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}
