//! Reads criterion's estimates back and prints ratios against same-run baselines.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::paired::Paired;

/// Where the benchmarks write criterion's data: the workspace's `target/criterion`.
/// Every benchmark calls this first, so it also marks when the run started: estimates older
/// than that (benchmarks a filter left out this time) are not reported.
pub fn criterion_dir() -> PathBuf {
    run_started();
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion")
}

fn run_started() -> SystemTime {
    static STARTED: OnceLock<SystemTime> = OnceLock::new();
    *STARTED.get_or_init(SystemTime::now)
}

/// A benchmark, as (group, id) — `id` includes a `/parameter` suffix when there is one.
pub type BenchRef = (&'static str, &'static str);

/// One line of the report.
pub struct Row {
    label: &'static str,
    kind: Kind,
}

enum Kind {
    /// How many times faster `subject` is than `baseline` (baseline time / subject time).
    Ratio {
        subject: BenchRef,
        baseline: BenchRef,
        target: f64,
    },
    /// Operations per second of one benchmark.
    Throughput { subject: BenchRef, target: f64 },
    /// Extra time per operation of `subject` over `baseline`.
    Overhead {
        subject: BenchRef,
        baseline: BenchRef,
    },
    /// A ratio from a paired measurement (`None`: it did not run).
    Paired { result: Option<Paired>, target: f64 },
}

impl Row {
    /// `subject` relative to `baseline`, with the figure to reach (0 for none).
    pub fn ratio(label: &'static str, subject: BenchRef, baseline: BenchRef, target: f64) -> Row {
        Row {
            label,
            kind: Kind::Ratio {
                subject,
                baseline,
                target,
            },
        }
    }

    /// Operations per second, with the figure to reach.
    pub fn throughput(label: &'static str, subject: BenchRef, target: f64) -> Row {
        Row {
            label,
            kind: Kind::Throughput { subject, target },
        }
    }

    /// A paired measurement's ratio, with the figure to reach (0 for none).
    pub fn paired(label: &'static str, result: Option<Paired>, target: f64) -> Row {
        Row {
            label,
            kind: Kind::Paired { result, target },
        }
    }

    /// Time added per operation.
    pub fn overhead(label: &'static str, subject: BenchRef, baseline: BenchRef) -> Row {
        Row {
            label,
            kind: Kind::Overhead { subject, baseline },
        }
    }
}

/// Time per iteration in nanoseconds, as criterion reports it: the slope of its linear
/// regression when it has one (the figure it prints), else the mean. `None` when the
/// benchmark did not run in this process.
pub fn mean_ns(bench: BenchRef) -> Option<f64> {
    let path = criterion_dir()
        .join(bench.0)
        .join(bench.1)
        .join("new/estimates.json");
    let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if written < run_started() {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| value["mean"]["point_estimate"].as_f64())
}

/// " (target >= 0.95x)", or nothing without a target.
fn ratio_goal(target: f64) -> String {
    if target > 0.0 {
        format!(" (target >= {target:.2}x)")
    } else {
        String::new()
    }
}

fn verdict(value: f64, target: f64) -> &'static str {
    if target <= 0.0 {
        ""
    } else if value >= target {
        "  ok"
    } else {
        "  BELOW TARGET"
    }
}

/// Whether this run measures: `cargo bench` passes `--bench`; under `cargo test` criterion
/// only checks that each benchmark runs once.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Whether a paired measurement named `name` should run: when measuring, and either no
/// filter was given on the command line or one of the filters is part of `name`.
pub fn selected(name: &str) -> bool {
    // Criterion options that take a value: that value is not a filter.
    const TAKES_VALUE: &[&str] = &[
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--output-format",
        "--plotting-backend",
        "--color",
        "--profile-time",
        "-c",
        "-s",
        "-b",
    ];
    if !measuring() {
        return false;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !a.starts_with('-') && (*i == 0 || !TAKES_VALUE.contains(&args[i - 1].as_str()))
        })
        .map(|(_, a)| a)
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// Prints the table; rows whose benchmarks did not run (filtered out) are skipped. Under
/// `cargo test` (no `--bench`), criterion only checks that each benchmark runs and measures
/// nothing, so no table is printed.
#[allow(clippy::print_stdout)]
pub fn print(title: &str, rows: &[Row]) {
    if !measuring() {
        println!("\n== {title}: run `cargo bench` for figures ==");
        return;
    }
    println!("\n== {title} ==");
    for row in rows {
        let line = match &row.kind {
            Kind::Ratio {
                subject,
                baseline,
                target,
            } => {
                let (Some(s), Some(b)) = (mean_ns(*subject), mean_ns(*baseline)) else {
                    continue;
                };
                let ratio = b / s;
                format!(
                    "{:<72} {ratio:>6.2}x  [{:.0}/s vs {:.0}/s]{}{}",
                    row.label,
                    1e9 / s,
                    1e9 / b,
                    ratio_goal(*target),
                    verdict(ratio, *target)
                )
            }
            Kind::Throughput { subject, target } => {
                let Some(s) = mean_ns(*subject) else { continue };
                let per_second = 1e9 / s;
                let goal = if *target > 0.0 {
                    format!(", target >= {target:.0}/s")
                } else {
                    String::new()
                };
                format!(
                    "{:<72} {per_second:>10.0}/s ({s:.0} ns/op{goal}){}",
                    row.label,
                    verdict(per_second, *target)
                )
            }
            Kind::Overhead { subject, baseline } => {
                let (Some(s), Some(b)) = (mean_ns(*subject), mean_ns(*baseline)) else {
                    continue;
                };
                format!(
                    "{:<72} {:>8.0} ns/request ({s:.0} vs {b:.0} ns)",
                    row.label,
                    s - b
                )
            }
            Kind::Paired { result, target } => {
                let Some(p) = result else { continue };
                format!(
                    "{:<72} {:>6.3}x  [p10 {:.3}, p90 {:.3}; {:.0} vs {:.0} ns/op]{}{}",
                    row.label,
                    p.ratio,
                    p.p10,
                    p.p90,
                    p.subject_ns,
                    p.baseline_ns,
                    ratio_goal(*target),
                    verdict(p.ratio, *target)
                )
            }
        };
        println!("{line}");
    }
}
