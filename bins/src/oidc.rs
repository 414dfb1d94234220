//! `oidc-server`: the OpenID provider ([`oidc_core::provider::Provider`]) over hyper, with
//! a SQLite store in the data directory (or, with `OIDC_DATABASE_URL`, PostgreSQL shared by
//! every replica, lockout counters and rate limits included), login at Google or any OpenID
//! provider, and optionally local password users.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand};
use oidc_core::authn::{Authenticator, LoginStateStore};
use oidc_core::login::LockoutStore;
use oidc_core::login::{
    ClientSecret, LocalUser, PasswordHashString, Passwords, Upstream, UpstreamConfig, UpstreamError,
};
use oidc_core::outbound::{
    AddressPolicy, ClientMetadataDocuments, MetadataDocumentConfig, OutboundClient, OutboundConfig,
};
use oidc_core::provider::RateLimitStore;
use oidc_core::provider::{
    CorsPolicy, Provider, ProviderConfig, RateLimits, ResourceScopes, ScopeDefinition, StaticClient,
};
use oidc_core::redirect::RedirectUri;
use oidc_core::secret::SecretHash;
use oidc_core::store::{
    PostgresLimitStore, PostgresOptions, PostgresStore, ProviderStore, SqliteStore,
};
use oidc_core::types::{ClientId, Issuer, ResourceIndicator, Scope};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::config::{
    OidcConnectionArgs, Secret, create_private_dir, require_https_unless_loopback, split_list,
};
use crate::probes::Probes;
use crate::serve::ConnectionLimits;

/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// The OpenID provider in front of the memory server: discovery, JWKS, authorization code +
/// PKCE, token, refresh, revocation, userinfo, introspection and dynamic client registration,
/// with users signing in at Google (or any OpenID provider) and/or with local passwords.
#[derive(Parser, Debug, Clone)]
#[command(name = "oidc-server", version)]
pub struct OidcArgs {
    /// Something to do instead of serving.
    #[command(subcommand)]
    pub command: Option<OidcCommand>,

    /// Issuer and public base URL; every endpoint lives under it. Plain http only for
    /// loopback hosts.
    #[arg(long, env = "OIDC_BASE_URL", default_value = "http://127.0.0.1:8766")]
    pub base_url: String,

    /// Address to listen on.
    #[arg(long, env = "OIDC_LISTEN", default_value = "127.0.0.1:8766")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database and signing keys (created if missing).
    #[arg(long, env = "OIDC_DATA_DIR", default_value = "data/oidc-server")]
    pub data_dir: PathBuf,

    /// The audience of access tokens when a client names no resource: the MCP server's
    /// canonical resource URI.
    #[arg(
        long,
        env = "OIDC_DEFAULT_AUDIENCE",
        default_value = "http://127.0.0.1:8765/mcp"
    )]
    pub default_audience: String,

    /// Further resources (RFC 8707) clients may request tokens for, comma-separated.
    #[arg(long, env = "OIDC_RESOURCES", default_value = "")]
    pub resources: String,

    /// Default scopes per resource: `resource=scope scope` entries separated by `;` (or
    /// `,`), e.g. `https://mcp.example.com/mcp=memories:read memories:write`. A client
    /// asking for a token for a resource without naming any of its scopes (say, only
    /// `openid email profile`) is granted them all; one naming some gets only those. The
    /// default audience defaults to `memories:read memories:write` unless listed here;
    /// `resource=` with no scopes turns a resource's defaults off. Each resource must be the
    /// default audience or in OIDC_RESOURCES, each scope memories:read or memories:write.
    #[arg(long, env = "OIDC_RESOURCE_SCOPES", default_value = "")]
    pub resource_scopes: String,

    /// The upstream OpenID provider users sign in at.
    #[arg(long, env = "OIDC_UPSTREAM_ISSUER", default_value = GOOGLE_ISSUER)]
    pub upstream_issuer: String,

    /// Our client id at the upstream (for Google: the OAuth client's id). Without one, no
    /// upstream login is offered.
    #[arg(long, env = "GOOGLE_CLIENT_ID")]
    pub google_client_id: Option<String>,

    /// Our client secret at the upstream.
    #[arg(long, env = "GOOGLE_CLIENT_SECRET", hide_env_values = true)]
    pub google_client_secret: Option<Secret>,

    /// Only these email addresses may sign in upstream (comma-separated, verified emails only).
    #[arg(long, env = "OIDC_ALLOWED_EMAILS", default_value = "")]
    pub allowed_emails: String,

    /// Only emails in these domains may sign in upstream (comma-separated).
    #[arg(long, env = "OIDC_ALLOWED_DOMAINS", default_value = "")]
    pub allowed_domains: String,

    /// Google Workspace domains: the ID token's `hd` claim must be one of them.
    #[arg(long, env = "OIDC_HOSTED_DOMAINS", default_value = "")]
    pub hosted_domains: String,

    /// Allow any upstream account to sign in. Without it, the server refuses to start with
    /// an upstream but no email, domain or hosted-domain restriction.
    #[arg(long, env = "OIDC_ALLOW_ANY_USER", default_value_t = false)]
    pub allow_any_user: bool,

    /// A TOML file of local password users (`[[users]]` with username, password_hash, and
    /// optional email, email_verified, name). With it, password login is offered.
    #[arg(long, env = "OIDC_USERS_FILE")]
    pub users_file: Option<PathBuf>,

    /// Browser origins allowed by CORS on discovery, JWKS, token, userinfo, registration and
    /// revocation, comma-separated; http://localhost and http://127.0.0.1 are always allowed.
    #[arg(
        long,
        env = "OIDC_ALLOWED_ORIGINS",
        default_value = "https://chatgpt.com,https://chat.openai.com"
    )]
    pub allowed_origins: String,

    /// Per-client-address rate limits on authorize, token, register and login: `on` or
    /// `off` (only when a rate-limiting proxy is in front).
    #[arg(long, env = "OIDC_RATE_LIMITS", default_value = "on", value_parser = ["on", "off"])]
    pub rate_limits: String,

    /// Addresses of reverse proxies whose `X-Forwarded-For` names the client (comma-separated
    /// IPs). Behind a proxy, set this or every client shares the proxy's rate limit.
    #[arg(long, env = "OIDC_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// How long a dynamically registered client may go unused (no token issued to it)
    /// before it is deleted, unless it still holds a live grant: a number with a unit
    /// (`30d`, `12h`, `90m`, `600s`; a bare number is seconds, at least 60), or `off` to keep
    /// clients forever. Checked every minute.
    #[arg(long, env = "OIDC_DYNAMIC_CLIENT_TTL", default_value = "30d")]
    pub dynamic_client_ttl: String,

    /// PostgreSQL for the provider's state, shared by every replica:
    /// `postgres://user:password@host:5432/db` (add `?sslmode=require` for TLS). Unset:
    /// SQLite in OIDC_DATA_DIR. Migrations run at start, under a lock.
    #[arg(long, env = "OIDC_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Connections each replica keeps to PostgreSQL at most.
    #[arg(long, env = "OIDC_DATABASE_POOL", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool: u32,

    /// Operator token for the details of `/health` (store, signing kid, published keys,
    /// next rotation), sent as `Authorization: Bearer <token>`; at least 32 characters
    /// (e.g. `openssl rand -hex 32`). Without it `/health` shows only its status, to
    /// everyone.
    #[arg(long, env = "OIDC_HEALTH_TOKEN", hide_env_values = true)]
    pub health_token: Option<Secret>,

    /// How long access tokens are valid: seconds, or a number with a unit (`15m`, `1h`),
    /// from 60 s to 24 h. Resource servers that read the token status lists learn of a
    /// revocation within OIDC_STATUS_LIST_TTL; others honour a revoked token until it
    /// expires.
    #[arg(long, env = "OIDC_ACCESS_TOKEN_TTL", default_value = "3600")]
    pub access_token_ttl: String,

    /// Token status lists (draft-ietf-oauth-status-list): `on` puts a `status` claim in
    /// every access token and serves the signed lists at `/statuslists/{n}`, so that
    /// revocations reach resource servers within seconds; `off` leaves both out.
    #[arg(long, env = "OIDC_TOKEN_STATUS", default_value = "on", value_parser = ["on", "off"])]
    pub token_status: String,

    /// How long resource servers may cache a status list (its `ttl` and `Cache-Control:
    /// max-age`): seconds, or a number with a unit, from 1 s to 1 h. A revocation is seen
    /// at most this late.
    #[arg(long, env = "OIDC_STATUS_LIST_TTL", default_value = "10")]
    pub status_list_ttl: String,

    /// A TOML file of operator-configured clients: `[[clients]]` entries with `client_id`,
    /// `name`, `redirect_uris = [..]`, optional `secret_sha256` (64 hex characters, the
    /// SHA-256 of the client secret, e.g. `printf %s "$SECRET" | sha256sum`; without it the
    /// client is public and uses PKCE only), `refresh_tokens` (default true) and
    /// `account_access` (default false: only the operator's own apps, such as the memory
    /// page, may list and revoke a user's grants at /account/grants).
    #[arg(long, env = "OIDC_CLIENTS_FILE")]
    pub clients_file: Option<PathBuf>,

    /// Clients added by the program that embeds the server (the stack adds the memory
    /// page's client here); not a command-line setting.
    #[arg(skip)]
    pub extra_clients: Vec<StaticClient>,

    /// Connection limits.
    #[command(flatten)]
    pub connections: OidcConnectionArgs,

    /// A TOML file with any of these settings (keys in snake_case, e.g. base_url).
    #[arg(long, env = "OIDC_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum OidcCommand {
    /// Reads a password from standard input and prints its Argon2id hash for a users file.
    HashPassword,
}

/// The users file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    username: String,
    password_hash: String,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    name: Option<String>,
}

/// Reads local users from a TOML users file.
pub fn read_users(path: &Path) -> anyhow::Result<Vec<LocalUser>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: UsersFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    file.users
        .into_iter()
        .map(|entry| {
            let hash = PasswordHashString::parse(&entry.password_hash).with_context(|| {
                format!("{}: password_hash of `{}`", path.display(), entry.username)
            })?;
            let mut user = LocalUser::new(entry.username, hash);
            if let Some(email) = entry.email {
                user = user.with_email(email, entry.email_verified);
            }
            if let Some(name) = entry.name {
                user = user.with_name(name);
            }
            Ok(user)
        })
        .collect()
}

/// The clients file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    #[serde(default)]
    clients: Vec<ClientEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    client_id: String,
    name: String,
    redirect_uris: Vec<String>,
    secret_sha256: Option<String>,
    #[serde(default = "default_true")]
    refresh_tokens: bool,
    #[serde(default)]
    account_access: bool,
}

fn default_true() -> bool {
    true
}

/// Reads operator-configured clients from a TOML clients file (see
/// [`OidcArgs::clients_file`]). Errors name the file and the entry (its position and
/// client id) and never repeat a line of the file: a secret pasted into the wrong key stays
/// out of the logs.
pub fn read_clients(path: &Path) -> anyhow::Result<Vec<StaticClient>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: ClientsFile = toml::from_str(&text).map_err(|error| {
        let place = error
            .span()
            .map(|span| place_in_clients_file(&text, span.start))
            .unwrap_or_default();
        anyhow!("{}{place}: {}", path.display(), error.message())
    })?;
    let mut clients: Vec<StaticClient> = Vec::with_capacity(file.clients.len());
    for (index, entry) in file.clients.into_iter().enumerate() {
        let at = format!("{}: clients entry {}", path.display(), index + 1);
        let client = client_from_entry(entry).with_context(|| at.clone())?;
        if let Some(earlier) = clients
            .iter()
            .position(|c| c.client_id() == client.client_id())
        {
            bail!(
                "{at}: client_id `{}` is already used by entry {}",
                client.client_id().as_str(),
                earlier + 1
            );
        }
        clients.push(client);
    }
    Ok(clients)
}

/// ` (line n, clients entry m)` for a byte offset of a clients file (entries counted by
/// their `[[clients]]` headers).
fn place_in_clients_file(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    // Up to the end of the error's line: an error may point at an entry's own header.
    let line_end = text
        .get(offset..)
        .and_then(|rest| rest.find('\n'))
        .map_or(text.len(), |i| offset + i);
    let entries = text
        .get(..line_end)
        .unwrap_or(text)
        .lines()
        .filter(|l| l.trim_start().starts_with("[[clients]]"))
        .count();
    if entries == 0 {
        format!(" (line {line})")
    } else {
        format!(" (line {line}, clients entry {entries})")
    }
}

/// One checked entry of the clients file. Errors name the client id and the key.
fn client_from_entry(entry: ClientEntry) -> anyhow::Result<StaticClient> {
    let client_id = ClientId::parse(&entry.client_id)
        .map_err(|_| anyhow!("client_id must be 1 to 2048 printable characters without spaces"))?;
    let id = client_id.as_str().to_owned();
    if entry.name.trim().is_empty() {
        bail!("client `{id}`: name must not be empty");
    }
    if entry.redirect_uris.is_empty() {
        bail!("client `{id}`: redirect_uris must list at least one uri");
    }
    let redirect_uris = entry
        .redirect_uris
        .iter()
        .map(|uri| {
            RedirectUri::parse(uri).with_context(|| {
                format!("client `{id}`: redirect_uris: `{uri}` is not an acceptable redirect uri")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = match &entry.secret_sha256 {
        Some(hex) => {
            let hash = SecretHash::from_hex(hex.trim()).map_err(|_| {
                anyhow!(
                    "client `{id}`: secret_sha256 must be 64 hex characters, the SHA-256 of the \
                     secret (e.g. `printf %s \"$SECRET\" | sha256sum`), not the secret itself"
                )
            })?;
            StaticClient::confidential(client_id, entry.name, redirect_uris, hash)
        }
        None => StaticClient::public(client_id, entry.name, redirect_uris),
    };
    let client = client.with_refresh_tokens(entry.refresh_tokens);
    Ok(if entry.account_access {
        client.with_account_access()
    } else {
        client
    })
}

/// The scopes of the memory server, with the consent page's words for them.
pub const MEMORY_SCOPES: [(&str, &str); 2] = [
    ("memories:read", "Read your memories"),
    ("memories:write", "Add, change and delete your memories"),
];

/// The provider configuration the settings describe (everything but the store, the login
/// methods and the socket), checked as a whole.
pub fn provider_config(args: &OidcArgs) -> anyhow::Result<ProviderConfig> {
    let issuer = require_https_unless_loopback("OIDC_BASE_URL", &args.base_url)?;
    let audience = ResourceIndicator::parse(&args.default_audience)
        .context("OIDC_DEFAULT_AUDIENCE is not a valid resource")?;
    let resource_scopes = resource_scopes(&args.resource_scopes, &audience)?;
    let mut config = ProviderConfig::new(issuer, audience);
    for (name, description) in MEMORY_SCOPES {
        config = config.with_scope(ScopeDefinition::new(name, description)?);
    }
    for resource in split_list(&args.resources) {
        config = config.with_resource(
            ResourceIndicator::parse(&resource)
                .with_context(|| format!("OIDC_RESOURCES: {resource}"))?,
        );
    }
    for entry in resource_scopes {
        config = config.with_resource_scopes(entry);
    }
    config
        .check_resource_scopes()
        .context("OIDC_RESOURCE_SCOPES")?;
    config.cors = CorsPolicy::new(split_list(&args.allowed_origins)).with_loopback(true);
    if args.rate_limits == "off" {
        config.rate_limits = RateLimits::unlimited();
    }
    config.registration.unused_client_ttl =
        duration_setting(&args.dynamic_client_ttl).context("OIDC_DYNAMIC_CLIENT_TTL")?;
    let access = bounded_duration(&args.access_token_ttl, ACCESS_TOKEN_TTL_RANGE)
        .context("OIDC_ACCESS_TOKEN_TTL")?;
    config = config.with_access_token_lifetime(access);
    config.status_lists.enabled = args.token_status == "on";
    config.status_lists.ttl = bounded_duration(&args.status_list_ttl, STATUS_LIST_TTL_RANGE)
        .context("OIDC_STATUS_LIST_TTL")?;
    if let Some(token) = &args.health_token {
        config.health_token = Some(health_token_hash(token.expose_secret())?);
    }
    if let Some(path) = &args.clients_file {
        let clients = read_clients(path)?;
        tracing::info!(clients = clients.len(), file = %path.display(), "static clients configured");
        config.static_clients.extend(clients);
    }
    for extra in &args.extra_clients {
        if config
            .static_clients
            .iter()
            .any(|c| c.client_id() == extra.client_id())
        {
            bail!(
                "OIDC_CLIENTS_FILE: client_id `{}` is reserved for a built-in client",
                extra.client_id().as_str()
            );
        }
        config.static_clients.push(extra.clone());
    }
    config.validate().context("invalid configuration")?;
    Ok(config)
}

/// Accepted `OIDC_ACCESS_TOKEN_TTL` values, in seconds: a minute to a day.
const ACCESS_TOKEN_TTL_RANGE: (u64, u64) = (60, 24 * 3600);
/// Accepted `OIDC_STATUS_LIST_TTL` values, in seconds: a second to an hour.
const STATUS_LIST_TTL_RANGE: (u64, u64) = (1, 3600);

/// Parses a duration setting that cannot be `off` ([`duration_setting`]) and must lie
/// within `(min, max)` seconds, both included.
pub fn bounded_duration(value: &str, (min, max): (u64, u64)) -> anyhow::Result<Duration> {
    let Some(duration) = duration_setting(value)? else {
        bail!("expected a number of seconds (or with a unit, e.g. 15m), not off");
    };
    if !(min..=max).contains(&duration.as_secs()) {
        bail!("must be from {min} to {max} seconds");
    }
    Ok(duration)
}

/// Shortest accepted `OIDC_HEALTH_TOKEN`, in characters.
const MIN_HEALTH_TOKEN_CHARS: usize = 32;

/// The hash the provider compares `/health` bearer tokens with. The error never shows the
/// token.
fn health_token_hash(token: &str) -> anyhow::Result<SecretHash> {
    if token.chars().count() < MIN_HEALTH_TOKEN_CHARS
        || token.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        bail!(
            "OIDC_HEALTH_TOKEN must be at least {MIN_HEALTH_TOKEN_CHARS} characters without spaces \
             (e.g. `openssl rand -hex 32`)"
        );
    }
    Ok(SecretHash::of(token))
}

/// Parses a duration setting: `off`, or a number with an optional unit `s`, `m`, `h` or `d`
/// (seconds without one). The value is not echoed in errors.
pub fn duration_setting(value: &str) -> anyhow::Result<Option<Duration>> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (number, unit) = match value.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&value[..at], c.to_ascii_lowercase()),
        _ => (value, 's'),
    };
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 24 * 3600,
        _ => bail!("unknown unit; use s, m, h or d (e.g. 30d), or off"),
    };
    let number: u64 = number
        .trim()
        .parse()
        .context("expected a whole number with a unit (e.g. 30d), or off")?;
    let seconds = number
        .checked_mul(factor)
        .context("the duration is too long")?;
    Ok(Some(Duration::from_secs(seconds)))
}

/// Parses `OIDC_RESOURCE_SCOPES`: `resource=scope scope` entries separated by `;` or `,`
/// (so a TOML array of entries works too). `default_audience` gets both
/// [`MEMORY_SCOPES`] unless an entry names it. A resource listed twice is refused.
///
/// Errors name the entry by its position, not its text.
pub fn resource_scopes(
    setting: &str,
    default_audience: &ResourceIndicator,
) -> anyhow::Result<Vec<ResourceScopes>> {
    let mut entries: Vec<ResourceScopes> = Vec::new();
    let texts = setting
        .split([';', ','])
        .map(str::trim)
        .filter(|entry| !entry.is_empty());
    for (index, text) in texts.enumerate() {
        let entry = ResourceScopes::parse(text)
            .with_context(|| format!("OIDC_RESOURCE_SCOPES: entry {}", index + 1))?;
        if entries.iter().any(|e| e.resource() == entry.resource()) {
            bail!(
                "OIDC_RESOURCE_SCOPES: entry {} names a resource already listed",
                index + 1
            );
        }
        entries.push(entry);
    }
    if !entries.iter().any(|e| e.resource() == default_audience) {
        let memories = Scope::from_tokens(MEMORY_SCOPES.iter().map(|(name, _)| *name))?;
        entries.push(ResourceScopes::new(
            default_audience.clone(),
            Some(memories),
        ));
    }
    Ok(entries)
}

/// A bound, ready-to-run provider.
pub struct OidcServer {
    listener: TcpListener,
    provider: Provider,
    store: Arc<dyn ProviderStore>,
    issuer: String,
    trusted_proxies: Arc<[IpAddr]>,
    limits: ConnectionLimits,
}

impl OidcServer {
    /// Opens the store, loads or creates keys, sets up the login methods and binds.
    pub async fn bind(args: &OidcArgs) -> anyhow::Result<OidcServer> {
        let config = provider_config(args)?;
        let limits = args.connections.limits()?;
        let issuer = config.issuer.clone();
        create_private_dir(&args.data_dir)?;
        let (store, shared_limits) = open_store(args).await?;
        let trusted_proxies = split_list(&args.trusted_proxies)
            .iter()
            .map(|ip| {
                ip.parse::<IpAddr>()
                    .with_context(|| format!("OIDC_TRUSTED_PROXIES: {ip} is not an IP address"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        let login_store: Arc<dyn LoginStateStore> = store.clone();
        let mut builder = Provider::builder(config, Arc::clone(&store));
        if let Some(limits) = &shared_limits {
            builder = builder.rate_limit_store(Arc::clone(limits) as Arc<dyn RateLimitStore>);
        }
        let mut methods = 0;
        if let Some(upstream) = upstream_login(args, &issuer, Arc::clone(&login_store)).await? {
            builder = builder.authenticator(upstream);
            methods += 1;
        }
        if let Some(path) = &args.users_file {
            let users = read_users(path)?;
            tracing::info!(users = users.len(), file = %path.display(), "password login enabled");
            let mut passwords = Passwords::new(users, &issuer, Arc::clone(&login_store))?;
            if let Some(limits) = &shared_limits {
                passwords =
                    passwords.with_lockout_store(Arc::clone(limits) as Arc<dyn LockoutStore>);
            }
            builder = builder.authenticator(Arc::new(passwords));
            methods += 1;
        }
        if methods == 0 {
            bail!(
                "no login method: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET (or another OIDC_UPSTREAM_ISSUER), \
                 and/or OIDC_USERS_FILE"
            );
        }
        let documents = ClientMetadataDocuments::new(
            OutboundClient::new(OutboundConfig::default()),
            MetadataDocumentConfig::default(),
        );
        let provider = builder
            .metadata_resolver(Arc::new(documents))
            .build()
            .await
            .context("starting the provider")?;
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        Ok(OidcServer {
            listener,
            provider,
            store,
            issuer: issuer.as_str().to_owned(),
            trusted_proxies: Arc::from(trusted_proxies),
            limits,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tracing::info!(
            addr = %self.local_addr()?,
            issuer = %self.issuer,
            discovery = %format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/')),
            max_connections = self.limits.max_connections,
            "oidc-server listening"
        );
        let store = self.store;
        let probes = Probes::new(
            self.provider,
            Arc::new(move || {
                let store = Arc::clone(&store);
                Box::pin(async move { store.health().await.is_ok() })
            }),
        );
        let draining = probes.draining();
        let shutdown = async move {
            shutdown.await;
            draining.start();
            tracing::info!("shutting down: draining requests");
        };
        crate::serve::serve(
            self.listener,
            probes,
            self.trusted_proxies,
            self.limits,
            shutdown,
        )
        .await?;
        tracing::info!("oidc-server stopped");
        Ok(())
    }
}

/// The provider's store: PostgreSQL when `OIDC_DATABASE_URL` is set, with the lockout
/// counters and rate-limit buckets beside it so that every replica counts together; else
/// SQLite in the data directory, with both in memory.
async fn open_store(
    args: &OidcArgs,
) -> anyhow::Result<(Arc<dyn ProviderStore>, Option<Arc<PostgresLimitStore>>)> {
    let Some(url) = &args.database_url else {
        let db = args.data_dir.join("oidc.db");
        let store = SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
        return Ok((Arc::new(store), None));
    };
    let options = PostgresOptions::new().with_max_connections(args.database_pool as usize);
    let store = PostgresStore::connect(url.expose_secret(), options)
        .await
        .context("OIDC_DATABASE_URL: connecting to PostgreSQL")?;
    let limits = store
        .limit_store()
        .await
        .context("OIDC_DATABASE_URL: the lockout and rate-limit tables")?;
    tracing::info!(store = ?store, pool = args.database_pool, "provider state in PostgreSQL");
    Ok((Arc::new(store), Some(Arc::new(limits))))
}

/// The upstream login, when a client id is configured. Discovery is retried for about half
/// a minute while the upstream is unreachable or answers badly; a configuration error fails
/// at once.
async fn upstream_login(
    args: &OidcArgs,
    issuer: &Issuer,
    store: Arc<dyn LoginStateStore>,
) -> anyhow::Result<Option<Arc<dyn Authenticator>>> {
    let Some(client_id) = &args.google_client_id else {
        return Ok(None);
    };
    let secret = args
        .google_client_secret
        .as_ref()
        .context("GOOGLE_CLIENT_ID is set but GOOGLE_CLIENT_SECRET is not")?;
    let upstream_issuer =
        require_https_unless_loopback("OIDC_UPSTREAM_ISSUER", &args.upstream_issuer)?;
    // The secret is not Clone (it is zeroized on drop): build the config anew per attempt.
    let make_config = || {
        UpstreamConfig::new(
            upstream_issuer.clone(),
            client_id.as_str(),
            ClientSecret::new(secret.expose_secret()),
            issuer,
        )
        .allowed_emails(split_list(&args.allowed_emails))
        .allowed_email_domains(split_list(&args.allowed_domains))
        .hosted_domains(split_list(&args.hosted_domains))
        .allow_any_user(args.allow_any_user)
    };
    let probe = make_config();
    if !probe.has_restriction() && !args.allow_any_user {
        bail!(
            "refusing to start: any account at {} could sign in. Set OIDC_ALLOWED_EMAILS, OIDC_ALLOWED_DOMAINS \
             or OIDC_HOSTED_DOMAINS, or OIDC_ALLOW_ANY_USER=true if that is really intended",
            args.upstream_issuer
        );
    }
    // An upstream on this machine (tests, a local IdP) was configured explicitly: allow it.
    let mut outbound = OutboundConfig::default();
    if upstream_issuer.is_loopback() {
        outbound = outbound
            .with_address_policy(AddressPolicy::public_only().insecure_allow_loopback())
            .insecure_allow_http_to_loopback();
    }
    let client = OutboundClient::new(outbound);
    tracing::info!(callback = %probe.callback_url(), upstream = %args.upstream_issuer, "upstream login configured");
    let mut delay = Duration::from_secs(1);
    let mut attempt = 1;
    loop {
        match Upstream::discover(make_config(), client.clone(), Arc::clone(&store)).await {
            Ok(upstream) => return Ok(Some(Arc::new(upstream))),
            Err(error @ UpstreamError::Discovery(_)) if attempt < 5 => {
                tracing::warn!(%error, attempt, "upstream discovery failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(error @ UpstreamError::Discovery(_)) => {
                return Err(error).context("upstream discovery failed");
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "the upstream login at {} is misconfigured",
                        args.upstream_issuer
                    )
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
