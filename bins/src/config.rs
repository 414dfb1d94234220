//! Settings come from flags, environment variables and an optional TOML file, in that order
//! of precedence, with defaults last. `--help` documents every setting and its variable.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Parser;
use mcp_api::mcp::McpConfig;
use oidc_core::InvalidValueKind;
use oidc_core::types::Issuer;
use zeroize::Zeroizing;

use crate::serve::{ConnectionLimits, connections_for_descriptors, descriptor_limit};

/// Parses `T` from `args`, with the values of the TOML file named by `--config <path>` (or
/// the `config_env` variable) as defaults that flags and environment variables override.
///
/// Keys of the file are the long flag names in `snake_case` (`base_url = "https://…"`); an
/// unknown key is an error, so a typo never silently falls back to a default.
pub fn parse_with_file<T: Parser>(args: Vec<OsString>, config_env: &str) -> anyhow::Result<T> {
    let file = config_path(&args).or_else(|| std::env::var_os(config_env).map(PathBuf::from));
    let mut command = T::command();
    if let Some(path) = file {
        for (key, value) in read_table(&path)? {
            let id = key.replace('-', "_");
            if !command
                .get_arguments()
                .any(|arg| arg.get_id() == id.as_str())
            {
                bail!("{}: unknown setting `{key}`", path.display());
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| item.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            command = command.mut_arg(id, |arg| arg.default_value(text));
        }
    }
    // Help, version and usage errors print themselves and exit, as with any clap program.
    let matches = command
        .try_get_matches_from(args)
        .unwrap_or_else(|e| e.exit());
    Ok(T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
}

fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

fn read_table(path: &Path) -> anyhow::Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("parsing {}", path.display()))
}

/// Splits a comma-separated list, dropping empty items.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a URL setting by the rules of an issuer identifier ([`Issuer::parse`]): https, or
/// plain http only to a loopback host, so that local tests work and production cannot be
/// misconfigured into it; absolute, in canonical form, without query, fragment or user
/// information.
///
/// The message names the setting, not the value, which could carry a password.
pub fn require_https_unless_loopback(name: &str, url: &str) -> anyhow::Result<Issuer> {
    Issuer::parse(url).map_err(|error| match error.kind() {
        InvalidValueKind::InsecureScheme => {
            anyhow!("{name} must be https for a non-loopback host")
        }
        kind => anyhow!("{name} is not an acceptable URL: {kind}"),
    })
}

/// Creates `path` and any missing parents, each new directory readable only by the owner
/// (mode 0700 on unix). Directories that already exist keep their mode.
pub fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .with_context(|| format!("creating the data directory {}", path.display()))
}

/// A secret setting, such as a client secret: `Debug` prints `<redacted>`, and the memory is
/// zeroed on drop. `Clone` only because clap requires it of every value.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// The secret. Do not log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Defines the connection-limit settings of one server, with its variables' prefix.
macro_rules! connection_args {
    ($name:ident, $server:literal, $max:literal, $header:literal, $body:literal, $idle:literal, $streams:literal) => {
        #[doc = concat!("Connection limits of ", $server, " (see [`crate::serve`]).")]
        #[derive(clap::Args, Debug, Clone)]
        pub struct $name {
            /// Most connections open at once: `auto` (the file-descriptor limit, `ulimit -n`,
            /// minus a fifth and at least 64 kept free) or a number (at most `auto`). Beyond
            /// it, new connections get `503` with `Retry-After` and are closed.
            #[arg(long, env = $max, default_value = "auto")]
            pub max_connections: String,

            /// Seconds a client may take to send a request's headers; also how long an
            /// HTTP/1 keep-alive connection may wait for its next request.
            #[arg(long, env = $header, default_value_t = crate::serve::HEADER_READ_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
            pub header_timeout: u64,

            /// Seconds a client may take to send a request body once its headers are in;
            /// slower ones get `408` and the connection is closed.
            #[arg(long, env = $body, default_value_t = crate::serve::BODY_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
            pub body_timeout: u64,

            /// Seconds a connection may stay open with nothing in flight (an open SSE
            /// stream is in flight) before it is closed: idle HTTP/2 connections, and
            /// connections that never send a request.
            #[arg(long, env = $idle, default_value_t = crate::serve::IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86_400))]
            pub idle_timeout: u64,

            /// Most concurrent streams (requests) on one HTTP/2 connection.
            #[arg(long = "http2-max-streams", env = $streams, default_value_t = crate::serve::HTTP2_MAX_CONCURRENT_STREAMS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
            pub http2_max_streams: u32,
        }

        impl $name {
            /// The limits these settings describe; `max_connections` never exceeds what the
            /// descriptor limit allows (a larger setting is lowered, with a warning).
            pub fn limits(&self) -> anyhow::Result<ConnectionLimits> {
                let allowed = connections_for_descriptors(descriptor_limit());
                let max_connections = max_connections_setting(&self.max_connections, allowed)
                    .context($max)?;
                let mut limits = ConnectionLimits::from_descriptor_limit();
                limits.max_connections = max_connections;
                limits.header_read_timeout = Duration::from_secs(self.header_timeout);
                limits.body_timeout = Duration::from_secs(self.body_timeout);
                limits.idle_timeout = Duration::from_secs(self.idle_timeout);
                limits.http2_max_concurrent_streams = self.http2_max_streams;
                Ok(limits)
            }
        }
    };
}

connection_args!(
    McpConnectionArgs,
    "mcp-server",
    "MCP_MAX_CONNECTIONS",
    "MCP_HEADER_TIMEOUT",
    "MCP_BODY_TIMEOUT",
    "MCP_IDLE_TIMEOUT",
    "MCP_HTTP2_MAX_STREAMS"
);
connection_args!(
    OidcConnectionArgs,
    "oidc-server",
    "OIDC_MAX_CONNECTIONS",
    "OIDC_HEADER_TIMEOUT",
    "OIDC_BODY_TIMEOUT",
    "OIDC_IDLE_TIMEOUT",
    "OIDC_HTTP2_MAX_STREAMS"
);

/// Parses a connection limit: `auto` is `allowed`; a number above `allowed` is lowered to
/// it with a warning (more would let connections take the descriptors the server needs).
pub fn max_connections_setting(value: &str, allowed: usize) -> anyhow::Result<usize> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("auto") {
        return Ok(allowed);
    }
    let wanted: usize = value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .context("expected `auto` or a positive whole number")?;
    if wanted > allowed {
        tracing::warn!(
            wanted,
            allowed,
            "the connection limit exceeds what the file-descriptor limit allows; using the lower value (raise `ulimit -n` for more)"
        );
        return Ok(allowed);
    }
    Ok(wanted)
}

/// Limits on MCP sessions and legacy SSE streams (see [`mcp_api::mcp::McpConfig`]).
#[derive(clap::Args, Debug, Clone)]
pub struct McpSessionArgs {
    /// Most legacy SSE streams (`/mcp/sse`) open at once: `auto` (half the connection
    /// limit, so other requests always find a connection) or a number. Beyond it a new
    /// stream gets `503` with `Retry-After`.
    #[arg(long, env = "MCP_MAX_SSE_STREAMS", default_value = "auto")]
    pub max_sse_streams: String,

    /// Most legacy SSE streams one user (token `sub`) may hold open; one more gets `429`
    /// with `Retry-After`.
    #[arg(long, env = "MCP_MAX_SSE_STREAMS_PER_USER", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_sse_streams_per_user: u64,

    /// Most MCP sessions (Streamable HTTP sessions and SSE streams together) held at once;
    /// when full of live streams, a new session gets `503` with `Retry-After`.
    #[arg(long, env = "MCP_MAX_SESSIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_sessions: u64,

    /// Most Streamable HTTP sessions one user may hold; opening one more ends that user's
    /// least recently used session (its client initializes again).
    #[arg(long, env = "MCP_MAX_SESSIONS_PER_USER", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_sessions_per_user: u64,
}

impl McpSessionArgs {
    /// Writes these limits into `config`, given the server's connection limit.
    pub fn apply(&self, config: &mut McpConfig, max_connections: usize) -> anyhow::Result<()> {
        let value = self.max_sse_streams.trim();
        config.max_sse_streams = if value.eq_ignore_ascii_case("auto") {
            (max_connections / 2).max(1)
        } else {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .context("MCP_MAX_SSE_STREAMS: expected `auto` or a positive whole number")?
        };
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        config.max_sse_streams_per_subject = size(self.max_sse_streams_per_user);
        config.max_sessions = size(self.max_sessions);
        config.max_sessions_per_subject = size(self.max_sessions_per_user);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    struct Demo {
        #[arg(long, env = "DEMO_TEST_URL", default_value = "http://127.0.0.1:1")]
        url: String,
        #[arg(long, default_value_t = 5)]
        count: u32,
        #[arg(long)]
        config: Option<PathBuf>,
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("demo")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn file_values_are_defaults_that_flags_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.toml");
        std::fs::write(&path, "url = \"https://file.example\"\ncount = 7\n").unwrap();
        let p = path.to_str().unwrap();
        let from_file: Demo = parse_with_file(args(&["--config", p]), "DEMO_CONFIG_UNSET").unwrap();
        assert_eq!(from_file.url, "https://file.example");
        assert_eq!(from_file.count, 7);
        let overridden: Demo =
            parse_with_file(args(&["--config", p, "--count", "9"]), "DEMO_CONFIG_UNSET").unwrap();
        assert_eq!(overridden.count, 9);
        let default: Demo = parse_with_file(args(&[]), "DEMO_CONFIG_UNSET").unwrap();
        assert_eq!(default.url, "http://127.0.0.1:1");
    }

    #[test]
    fn connection_limits_default_to_the_descriptor_limit_and_never_exceed_it() {
        assert_eq!(max_connections_setting("auto", 192).unwrap(), 192);
        assert_eq!(max_connections_setting(" AUTO ", 192).unwrap(), 192);
        assert_eq!(max_connections_setting("50", 192).unwrap(), 50);
        assert_eq!(max_connections_setting("5000", 192).unwrap(), 192);
        for bad in ["", "0", "-1", "many", "1.5"] {
            assert!(max_connections_setting(bad, 192).is_err(), "{bad}");
        }
        #[derive(Parser, Debug)]
        struct Both {
            #[command(flatten)]
            connections: McpConnectionArgs,
            #[command(flatten)]
            sessions: McpSessionArgs,
        }
        let both = Both::parse_from([
            "demo",
            "--max-connections=100",
            "--idle-timeout=5",
            "--body-timeout=7",
            "--header-timeout=3",
            "--http2-max-streams=20",
            "--max-sse-streams-per-user=4",
        ]);
        let limits = both.connections.limits().unwrap();
        assert!(limits.max_connections <= 100);
        assert_eq!(limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(limits.body_timeout, Duration::from_secs(7));
        assert_eq!(limits.header_read_timeout, Duration::from_secs(3));
        assert_eq!(limits.http2_max_concurrent_streams, 20);
        let mut config = McpConfig::default();
        both.sessions.apply(&mut config, 100).unwrap();
        assert_eq!(config.max_sse_streams, 50, "auto: half the connections");
        assert_eq!(config.max_sse_streams_per_subject, 4);
        assert_eq!(config.max_sessions, 10_000);
        assert_eq!(config.max_sessions_per_subject, 100);
        assert!(Both::try_parse_from(["demo", "--idle-timeout=0"]).is_err());
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.toml");
        std::fs::write(&path, "urll = \"typo\"\n").unwrap();
        let err =
            parse_with_file::<Demo>(args(&["--config", path.to_str().unwrap()]), "X").unwrap_err();
        assert!(err.to_string().contains("unknown setting `urll`"));
    }

    #[test]
    fn https_required_off_loopback() {
        assert!(require_https_unless_loopback("x", "https://mcp.example").is_ok());
        assert!(require_https_unless_loopback("x", "http://127.0.0.1:8765").is_ok());
        assert!(require_https_unless_loopback("x", "http://localhost:8765").is_ok());
        assert!(require_https_unless_loopback("x", "http://[::1]:8765").is_ok());
        assert!(require_https_unless_loopback("x", "http://mcp.example").is_err());
        assert!(require_https_unless_loopback("x", "ftp://mcp.example").is_err());
    }

    #[test]
    fn refused_urls_are_named_but_not_repeated() {
        let insecure = require_https_unless_loopback("MCP_BASE_URL", "http://user:pw@mcp.example")
            .unwrap_err()
            .to_string();
        assert!(
            insecure.contains("MCP_BASE_URL must be https"),
            "{insecure}"
        );
        assert!(!insecure.contains("pw"), "{insecure}");
        let query = require_https_unless_loopback("OIDC_ISSUER", "https://auth.example/?x=1")
            .unwrap_err()
            .to_string();
        assert!(query.contains("OIDC_ISSUER"), "{query}");
        assert!(query.contains("query not allowed"), "{query}");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let secret = Secret::from("GOCSPX-do-not-print".to_owned());
        assert_eq!(secret.expose_secret(), "GOCSPX-do-not-print");
        let debug = format!("{secret:?}");
        assert!(!debug.contains("GOCSPX"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[cfg(unix)]
    #[test]
    fn new_data_directories_are_private_and_existing_ones_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let nested = data.join("oidc-server");
        create_private_dir(&nested).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&nested), 0o700);

        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();
        create_private_dir(&shared.join("mcp-server")).unwrap();
        assert_eq!(mode(&shared), 0o750, "an existing directory is left alone");
        assert_eq!(mode(&shared.join("mcp-server")), 0o700);
    }
}
