//! `mcp-server`: the memory service ([`mcp_api::MemoryServer`]) over hyper, with a SQLite
//! store in the data directory (or, with `MCP_DATABASE_URL`, PostgreSQL shared by every
//! replica, MCP and memory-page sessions included) and access tokens checked against the
//! issuer's JWKS.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use jwks_verify::Verifier;
use jwks_verify::jwks::JwksCacheConfig;
use jwks_verify::status_list::{FailureMode, StatusListConfig};
use mcp_api::app::{
    App, AppConfig, HttpClient, HttpClientError, HttpFuture, SessionBackend as PageSessions,
};
use mcp_api::mcp::{McpConfig, PostgresSessions, SessionBackend};
use mcp_api::server::access_token_policy;
use mcp_api::store::{MemoryStore, PostgresOptions, PostgresStore, SqliteOptions};
use mcp_api::{Limits, MemoryServer, ProtectedResource, RateLimit, SqliteStore};
use oidc_core::outbound::{AddressPolicy, OutboundClient, OutboundConfig};
use tokio::net::TcpListener;

use crate::config::{
    McpConnectionArgs, McpSessionArgs, Secret, create_private_dir, require_https_unless_loopback,
    split_list,
};
use crate::oidc::bounded_duration;
use crate::probes::{Probes, ReadyCheck};
use crate::serve::ConnectionLimits;

/// Shortest accepted `MCP_HEALTH_TOKEN`, in characters.
const MIN_HEALTH_TOKEN_CHARS: usize = 32;

/// The memory MCP server: MCP (Streamable HTTP at /mcp, legacy SSE at /mcp/sse) and the REST
/// API under /api/v1, every request authenticated by an access token from the issuer.
#[derive(Parser, Debug, Clone)]
#[command(name = "mcp-server", version)]
pub struct McpArgs {
    /// Public base URL of this server. The MCP endpoint is {base}/mcp, and access tokens must
    /// carry {base}/mcp (or {base}) in `aud`. Plain http only for loopback hosts.
    #[arg(long, env = "MCP_BASE_URL", default_value = "http://127.0.0.1:8765")]
    pub base_url: String,

    /// Address to listen on.
    #[arg(long, env = "MCP_LISTEN", default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,

    /// Issuer of the access tokens (the oidc-server's base URL); its discovery document
    /// names the JWKS.
    #[arg(
        long = "issuer",
        env = "OIDC_ISSUER",
        default_value = "http://127.0.0.1:8766"
    )]
    pub issuer: String,

    /// Directory for the SQLite database (created if missing).
    #[arg(long, env = "MCP_DATA_DIR", default_value = "data/mcp-server")]
    pub data_dir: PathBuf,

    /// Browser origins allowed by CORS and by the MCP Origin check, comma-separated.
    /// http://localhost and http://127.0.0.1 on any port are always allowed.
    #[arg(
        long,
        env = "MCP_ALLOWED_ORIGINS",
        default_value = "https://chatgpt.com,https://chat.openai.com"
    )]
    pub allowed_origins: String,

    /// Seconds to cache the issuer's keys when it sends no Cache-Control max-age.
    #[arg(long, env = "MCP_JWKS_TTL", default_value_t = 600)]
    pub jwks_ttl: u64,

    /// Seconds between SSE keep-alive comments.
    #[arg(long, env = "MCP_SSE_KEEPALIVE", default_value_t = 15)]
    pub sse_keepalive: u64,

    /// Connection limits.
    #[command(flatten)]
    pub connections: McpConnectionArgs,

    /// Session and SSE stream limits.
    #[command(flatten)]
    pub sessions: McpSessionArgs,

    /// PostgreSQL for memories, access log and sessions, shared by every replica:
    /// `postgres://user:password@host:5432/db` (add `?sslmode=require` for TLS). Unset:
    /// SQLite in MCP_DATA_DIR. Migrations run at start, under a lock.
    #[arg(long, env = "MCP_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Connections each replica keeps to PostgreSQL at most.
    #[arg(long, env = "MCP_DATABASE_POOL", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool: u32,

    /// Operator token for the details of `/health` (store, keys in use, key-set age,
    /// verified-token and JWKS-failure counts), sent as `Authorization: Bearer <token>`; at
    /// least 32 characters (e.g. `openssl rand -hex 32`). Without it `/health` shows only
    /// its status, to everyone.
    #[arg(long, env = "MCP_HEALTH_TOKEN", hide_env_values = true)]
    pub health_token: Option<Secret>,

    /// Most memories (not deleted) one user may keep; more are refused with a clear
    /// quota error until some are deleted.
    #[arg(long, env = "MCP_MAX_MEMORIES_PER_USER", default_value_t = 100_000)]
    pub max_memories_per_user: u64,

    /// Most megabytes of memory text and metadata one user may keep.
    #[arg(long, env = "MCP_MAX_MEGABYTES_PER_USER", default_value_t = 256)]
    pub max_megabytes_per_user: u64,

    /// Requests per second each user (token subject) may make to the MCP and REST routes,
    /// sustained; more get 429 with Retry-After. 0 turns the limit off.
    #[arg(long, env = "MCP_RATE_LIMIT", default_value_t = 20)]
    pub rate_limit: u32,

    /// Requests each user may make at once before MCP_RATE_LIMIT applies.
    #[arg(long, env = "MCP_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,

    /// Days to keep access-log entries (which app read which memory, when); 0 keeps them
    /// forever.
    #[arg(long, env = "MCP_ACCESS_LOG_DAYS", default_value_t = 90)]
    pub access_log_days: u64,

    /// Revocation check against the issuer's Token Status Lists (draft-ietf-oauth-status-list):
    /// `on` checks every access token that names a status list, `required` also refuses
    /// tokens that name none, `off` honours tokens until they expire.
    #[arg(long, env = "MCP_TOKEN_STATUS", default_value = "on", value_parser = ["on", "required", "off"])]
    pub token_status: String,

    /// Longest a status list is used before it is fetched again (the issuer's shorter `ttl`
    /// wins): seconds, or a number with a unit, from 1 s to 1 h. A revoked token is refused
    /// at most about this long after the issuer publishes the revocation.
    #[arg(long, env = "MCP_STATUS_MAX_AGE", default_value = "30")]
    pub status_max_age: String,

    /// What happens to tokens whose status list cannot be fetched for 5 minutes past its
    /// refresh: `closed` refuses them (503 with Retry-After), `open` accepts them.
    #[arg(long, env = "MCP_STATUS_FAILURE", default_value = "closed", value_parser = ["closed", "open"])]
    pub status_failure: String,

    /// Client id of the memory page (`{base}/app/`) at the issuer. The page is served only
    /// when it is set; register the page there as a client with the redirect URI
    /// `{base}/app/callback` and account access (oidc-server: OIDC_CLIENTS_FILE).
    #[arg(long, env = "MCP_APP_CLIENT_ID")]
    pub app_client_id: Option<String>,

    /// Client secret of the memory page (`client_secret_basic`); without it the page signs
    /// in as a public client with PKCE only.
    #[arg(long, env = "MCP_APP_CLIENT_SECRET", hide_env_values = true)]
    pub app_client_secret: Option<Secret>,

    /// The key the memory page's sessions are sealed with in PostgreSQL (AES-256-GCM, at
    /// least 32 bytes, the same on every replica). Unset: derived from
    /// MCP_APP_CLIENT_SECRET; a page without a client secret needs it with MCP_DATABASE_URL.
    #[arg(long, env = "MCP_APP_SESSION_KEY", hide_env_values = true)]
    pub app_session_key: Option<Secret>,

    /// A TOML file with any of these settings (keys in snake_case, e.g. base_url).
    #[arg(long, env = "MCP_CONFIG")]
    pub config: Option<PathBuf>,
}

/// A bound, ready-to-run memory server.
pub struct McpServer {
    listener: TcpListener,
    server: Serving,
    base_url: String,
    limits: ConnectionLimits,
}

/// The memory server over the store the settings chose.
enum Serving {
    Sqlite(MemoryServer<SqliteStore>, ReadyCheck),
    Postgres(MemoryServer<PostgresStore>, ReadyCheck, PostgresSessions),
}

/// Range of `MCP_STATUS_MAX_AGE`, in seconds.
const STATUS_MAX_AGE_RANGE: (u64, u64) = (1, 3600);

/// The Token Status List check from the settings, or `None` when it is off.
fn status_lists(args: &McpArgs) -> anyhow::Result<Option<StatusListConfig>> {
    let max_age = bounded_duration(&args.status_max_age, STATUS_MAX_AGE_RANGE)
        .context("MCP_STATUS_MAX_AGE")?;
    let failure = match args.status_failure.as_str() {
        "open" => FailureMode::FailOpen,
        _ => FailureMode::FailClosed,
    };
    Ok((args.token_status != "off").then(|| {
        StatusListConfig::new()
            .require_status(args.token_status == "required")
            .max_age(max_age)
            .failure_mode(failure)
    }))
}

/// The memory page, when MCP_APP_CLIENT_ID is set, with its sessions in `sessions`.
fn memory_page<S: MemoryStore>(
    args: &McpArgs,
    store: &Arc<S>,
    verifier: &Verifier,
    sessions: PageSessions,
) -> anyhow::Result<Option<App<S>>> {
    let Some(client_id) = args.app_client_id.as_deref() else {
        return Ok(None);
    };
    let mut config = AppConfig::new(&args.base_url, &args.issuer, client_id);
    if let Some(secret) = &args.app_client_secret {
        config = config.with_client_secret(secret.expose_secret());
    }
    if let Some(key) = &args.app_session_key {
        config = config.with_session_key(key.expose_secret());
    }
    let app = App::with_sessions(
        config,
        Arc::clone(store),
        verifier.clone(),
        Arc::new(IssuerClient::new(&args.issuer)),
        sessions,
    )
    .context("the memory page (MCP_APP_CLIENT_ID)")?;
    Ok(Some(app))
}

/// How the memory page reaches the issuer: oidc-core's outbound client (rustls, one
/// timeout, a body limit, never following redirects). The issuer is the operator's own
/// setting, so it may live on a private network, or on loopback for a local stack.
struct IssuerClient(OutboundClient);

impl IssuerClient {
    fn new(issuer: &str) -> IssuerClient {
        let policy = AddressPolicy::public_only()
            .insecure_allow_private_networks()
            .insecure_allow_loopback();
        let mut config = OutboundConfig::default()
            .timeout(Duration::from_secs(10))
            .max_body_bytes(256 * 1024)
            .user_agent(concat!("mcp-server/", env!("CARGO_PKG_VERSION")))
            .with_address_policy(policy);
        if issuer.starts_with("http://") {
            // MCP_BASE_URL and OIDC_ISSUER were checked: plain http only to loopback.
            config = config.insecure_allow_http_to_loopback();
        }
        IssuerClient(OutboundClient::new(config))
    }
}

impl HttpClient for IssuerClient {
    fn send(&self, request: http::Request<bytes::Bytes>) -> HttpFuture<'_> {
        Box::pin(async move {
            let response = self
                .0
                .send_request(request)
                .await
                .map_err(|error| HttpClientError(error.to_string()))?;
            let mut answer = http::Response::new(response.body);
            *answer.status_mut() = response.status;
            *answer.headers_mut() = response.headers;
            Ok(answer)
        })
    }
}

/// The store's limits, quotas and access-log retention from the settings.
fn store_limits(args: &McpArgs) -> (Limits, Option<Duration>) {
    let mut limits = Limits::default();
    limits.max_memories_per_owner = args.max_memories_per_user;
    limits.max_bytes_per_owner = args.max_megabytes_per_user.saturating_mul(1024 * 1024);
    let retention =
        (args.access_log_days > 0).then(|| Duration::from_secs(args.access_log_days * 86_400));
    (limits, retention)
}

/// The memory server on PostgreSQL (`MCP_DATABASE_URL`), with MCP sessions and SSE streams
/// shared by every replica.
async fn on_postgres(
    args: &McpArgs,
    url: &str,
    verifier: Verifier,
    resource: ProtectedResource,
    mcp: McpConfig,
) -> anyhow::Result<Serving> {
    let (limits, retention) = store_limits(args);
    let options = PostgresOptions::new()
        .with_limits(limits)
        .with_access_log_retention(retention)
        .with_pool_size(args.database_pool as usize)
        .with_application_name("mcp-server");
    let store = PostgresStore::connect(url, options)
        .await
        .context("MCP_DATABASE_URL: connecting to PostgreSQL")?;
    let sessions = store
        .start_sessions()
        .await
        .context("MCP_DATABASE_URL: the MCP session tables")?;
    tracing::info!(
        pool = args.database_pool,
        replica = sessions.replica_id(),
        "memories and sessions in PostgreSQL"
    );
    let page_sessions = if args.app_client_id.is_some() {
        let shared = store
            .start_page_sessions()
            .await
            .context("MCP_DATABASE_URL: the memory page's session tables")?;
        PageSessions::Postgres(shared)
    } else {
        PageSessions::InProcess
    };
    let store = Arc::new(store);
    let server = assemble(
        args,
        Arc::clone(&store),
        verifier,
        resource,
        mcp,
        (SessionBackend::Postgres(sessions.clone()), page_sessions),
    )?;
    Ok(Serving::Postgres(server, ready_check(store), sessions))
}

impl McpServer {
    /// Opens the store, starts fetching the issuer's keys and binds the listener.
    pub async fn bind(args: &McpArgs) -> anyhow::Result<McpServer> {
        require_https_unless_loopback("MCP_BASE_URL", &args.base_url)?;
        require_https_unless_loopback("OIDC_ISSUER", &args.issuer)?;
        if let Some(token) = &args.health_token {
            let token = token.expose_secret();
            if token.chars().count() < MIN_HEALTH_TOKEN_CHARS
                || token.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                anyhow::bail!(
                    "MCP_HEALTH_TOKEN must be at least {MIN_HEALTH_TOKEN_CHARS} characters without spaces \
                     (e.g. `openssl rand -hex 32`)"
                );
            }
        }
        let resource = ProtectedResource::new(&args.base_url, &args.issuer);
        let mut cache = JwksCacheConfig::default();
        cache.default_ttl = Duration::from_secs(args.jwks_ttl.max(1));
        let mut verifier = Verifier::builder(access_token_policy(&resource))
            .discover()
            .jwks_cache(cache);
        if let Some(status_lists) = status_lists(args)? {
            verifier = verifier.status_lists(status_lists);
        }
        let verifier = verifier
            .build()
            .context("configuring access-token verification")?;

        let mut mcp = McpConfig::default();
        mcp.allowed_origins = split_list(&args.allowed_origins);
        mcp.sse_keep_alive =
            (args.sse_keepalive > 0).then(|| Duration::from_secs(args.sse_keepalive));
        let limits = args.connections.limits()?;
        args.sessions.apply(&mut mcp, limits.max_connections)?;

        create_private_dir(&args.data_dir)?;
        let server = if let Some(url) = &args.database_url {
            on_postgres(args, url.expose_secret(), verifier, resource, mcp).await?
        } else {
            let db = args.data_dir.join("memories.db");
            let (limits, retention) = store_limits(args);
            let options = SqliteOptions::new()
                .with_limits(limits)
                .with_access_log_retention(retention);
            let store = SqliteStore::open_with_options(&db, options)
                .with_context(|| format!("opening {}", db.display()))?;
            let store = Arc::new(store);
            let server = assemble(
                args,
                Arc::clone(&store),
                verifier,
                resource,
                mcp,
                (SessionBackend::InProcess, PageSessions::InProcess),
            )?;
            Serving::Sqlite(server, ready_check(store))
        };
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        Ok(McpServer {
            listener,
            server,
            base_url: args.base_url.trim_end_matches('/').to_owned(),
            limits,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; then SSE streams are closed and in-flight requests
    /// drain.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tracing::info!(
            addr = %self.local_addr()?,
            mcp = %format!("{}/mcp", self.base_url),
            sse = %format!("{}/mcp/sse", self.base_url),
            max_connections = self.limits.max_connections,
            "mcp-server listening"
        );
        match self.server {
            Serving::Sqlite(server, ready) => {
                serve(self.listener, server, ready, self.limits, shutdown).await?;
            }
            Serving::Postgres(server, ready, sessions) => {
                serve(self.listener, server, ready, self.limits, shutdown).await?;
                // The other replicas stop relaying to this one's streams at once.
                if let Err(error) = sessions.shutdown().await {
                    tracing::warn!(%error, "could not deregister this replica's streams");
                }
            }
        }
        tracing::info!("mcp-server stopped");
        Ok(())
    }
}

/// The memory server over `store`, with the memory page, health token and rate limit the
/// settings ask for.
fn assemble<S: MemoryStore>(
    args: &McpArgs,
    store: Arc<S>,
    verifier: Verifier,
    resource: ProtectedResource,
    mcp: McpConfig,
    (sessions, page_sessions): (SessionBackend, PageSessions),
) -> anyhow::Result<MemoryServer<S>> {
    let app = memory_page(args, &store, &verifier, page_sessions)?;
    let mut server = MemoryServer::with_sessions(store, verifier, resource, mcp, sessions);
    if let Some(app) = app {
        server = server.with_app(app);
    }
    if let Some(token) = &args.health_token {
        server = server.with_health_token(token.expose_secret());
    }
    if args.rate_limit > 0 {
        server = server.with_rate_limit(RateLimit::new(args.rate_limit, args.rate_burst));
    }
    Ok(server)
}

/// Ready while `store` answers a trivial query.
fn ready_check<S: MemoryStore>(store: Arc<S>) -> ReadyCheck {
    Arc::new(move || {
        let store = Arc::clone(&store);
        Box::pin(async move { store.health().await.is_ok() })
    })
}

/// Serves until `shutdown` completes; then `/readyz` says draining, SSE streams are closed
/// and in-flight requests drain.
async fn serve<S: MemoryStore>(
    listener: TcpListener,
    server: MemoryServer<S>,
    ready: ReadyCheck,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let probes = Probes::new(server.clone(), ready);
    let draining = probes.draining();
    let on_shutdown = async move {
        shutdown.await;
        draining.start();
        let closed = server.close_streams();
        tracing::info!(
            closed,
            "shutting down: SSE streams closed, draining requests"
        );
    };
    crate::serve::serve(listener, probes, Arc::from([]), limits, on_shutdown).await
}
