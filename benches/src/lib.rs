//! Shared fixtures and the ratio report for the workspace's criterion benchmarks.
//!
//! Every benchmark prints, after criterion's own output, a table of ratios against a
//! baseline measured in the same process: these machines are noisy, ratios are not. Where
//! a ratio has a target, subject and baseline are also timed in alternating blocks
//! ([`paired`]), so drift in clock speed or load hits both alike.

pub mod fixture;
pub mod latency;
pub mod paired;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod report;
pub mod server;
