//! Structured logs with `tracing`: human-readable by default, JSON with `LOG_FORMAT=json`,
//! filtered by `RUST_LOG` (default `info`), written to standard error.
//!
//! Nothing here logs request headers or bodies: tokens, codes, passwords and memory text
//! never reach the log.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Standard output is for what a person should read (the stack's banner); colour only on
    // a terminal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
