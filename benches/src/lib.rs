//! Shared fixtures and the ratio report for the workspace's criterion benchmarks.
//!
//! Every benchmark prints, after criterion's own output, a table of ratios against a
//! baseline measured in the same process: these machines are noisy, ratios are not.

pub mod fixture;
pub mod report;
