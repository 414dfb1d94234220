//! The server binaries' shared plumbing: configuration (flags, environment variables and an
//! optional TOML file), logging, the hyper accept loop with graceful shutdown, and the
//! wiring of each server.
//!
//! The binaries only parse configuration, install logging and call into here; the protocol
//! logic lives in the library crates.

pub mod config;
pub mod logging;
pub mod mcp;
pub mod oidc;
pub mod probes;
pub mod serve;
pub mod stack;
