//! Settings come from flags, environment variables and an optional TOML file, in that order
//! of precedence, with defaults last. `--help` documents every setting and its variable.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;

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

/// Refuses a public URL that is not https: plain http is only for loopback hosts, so that
/// local tests work and production cannot be misconfigured into it.
pub fn require_https_unless_loopback(name: &str, url: &str) -> anyhow::Result<()> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("{name} is not a URL: {url}"))?;
    let host = uri
        .host()
        .with_context(|| format!("{name} has no host: {url}"))?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => bail!("{name} must be https for a non-loopback host (got {url})"),
        _ => bail!("{name} must be an http(s) URL (got {url})"),
    }
}

/// `localhost`, `127.0.0.0/8` or `[::1]`.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
}
