//! Paired measurement: a subject and its baseline timed in alternating short blocks.
//!
//! On a shared or frequency-scaling machine, two benchmarks run one after the other can
//! see different clock speeds and neighbours, which moves their ratio by several percent.
//! Alternating blocks expose both to the same conditions; the ratio reported is the median
//! of the per-round ratios, with the 10th and 90th percentiles to show the spread.

use std::hint::black_box;
use std::time::Instant;

/// The result of [`measure`]: times are nanoseconds per operation.
#[derive(Debug, Clone, Copy)]
pub struct Paired {
    /// Median over rounds of baseline time / subject time (above 1: the subject is faster).
    pub ratio: f64,
    /// 10th percentile of the per-round ratios.
    pub p10: f64,
    /// 90th percentile of the per-round ratios.
    pub p90: f64,
    /// Median subject time per operation.
    pub subject_ns: f64,
    /// Median baseline time per operation.
    pub baseline_ns: f64,
}

/// Runs `rounds` rounds; each times one block of the baseline and one of the subject (in
/// alternating order), each closure returning nanoseconds per operation for its block.
/// One untimed round warms both up.
///
/// # Panics
/// If `rounds` is zero.
pub fn measure(
    rounds: usize,
    mut baseline: impl FnMut() -> f64,
    mut subject: impl FnMut() -> f64,
) -> Paired {
    assert!(rounds > 0, "at least one round");
    black_box((baseline(), subject()));
    let mut ratios = Vec::with_capacity(rounds);
    let mut baseline_times = Vec::with_capacity(rounds);
    let mut subject_times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let (b, s) = if round % 2 == 0 {
            let b = baseline();
            (b, subject())
        } else {
            let s = subject();
            (baseline(), s)
        };
        ratios.push(b / s);
        baseline_times.push(b);
        subject_times.push(s);
    }
    Paired {
        ratio: percentile(&mut ratios, 50),
        p10: percentile(&mut ratios, 10),
        p90: percentile(&mut ratios, 90),
        subject_ns: percentile(&mut subject_times, 50),
        baseline_ns: percentile(&mut baseline_times, 50),
    }
}

/// Nanoseconds per call of `op(i)` over `ops` calls, `i` counting from `start`.
pub fn per_op(ops: u64, start: u64, mut op: impl FnMut(u64)) -> f64 {
    let begin = Instant::now();
    for i in start..start + ops {
        op(i);
    }
    #[allow(clippy::cast_precision_loss)] // block sizes are far below 2^52
    let per_op = begin.elapsed().as_nanos() as f64 / ops as f64;
    per_op
}

fn percentile(values: &mut [f64], pct: usize) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) * pct / 100]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_baseline_over_subject() {
        let mut b = [4.0, 4.0, 4.0, 4.0, 4.0].into_iter().cycle();
        let mut s = [2.0, 2.0, 1.0, 2.0, 8.0].into_iter().cycle();
        let p = measure(5, || b.next().unwrap_or(0.0), || s.next().unwrap_or(1.0));
        // Warm-up consumes the first pair; the rounds see 2, 1, 2, 8, 2.
        assert!((p.ratio - 2.0).abs() < 1e-9, "{p:?}");
        assert!((p.p90 - 2.0).abs() < 1e-9, "{p:?}");
        assert!((p.p10 - 0.5).abs() < 1e-9, "{p:?}");
        assert!((p.subject_ns - 2.0).abs() < 1e-9, "{p:?}");
        assert!((p.baseline_ns - 4.0).abs() < 1e-9, "{p:?}");
    }
}
