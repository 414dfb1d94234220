//! Latency samples and their percentiles.

use std::time::Duration;

/// Latency samples, sorted.
#[derive(Debug, Clone)]
pub struct Latencies {
    sorted: Vec<Duration>,
}

impl Latencies {
    /// Sorts `samples`.
    ///
    /// # Panics
    /// If `samples` is empty: there is nothing to report.
    pub fn new(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "at least one sample");
        samples.sort_unstable();
        Self { sorted: samples }
    }

    /// The `p`th quantile (`p` in 0..=1), nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        let last = self.sorted.len() - 1;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )] // sample counts are far below 2^52 and p is clamped to 0..=1
        let index = ((last as f64) * p.clamp(0.0, 1.0)).round() as usize;
        self.sorted[index.min(last)]
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.percentile(0.50)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.percentile(0.99)
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Never true: [`new`](Self::new) refuses no samples.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_of_the_sorted_samples() {
        let samples = (1..=101).rev().map(Duration::from_millis).collect();
        let latencies = Latencies::new(samples);
        assert_eq!(latencies.p50(), Duration::from_millis(51));
        assert_eq!(latencies.p99(), Duration::from_millis(100));
        assert_eq!(latencies.percentile(0.0), Duration::from_millis(1));
        assert_eq!(latencies.percentile(1.0), Duration::from_millis(101));
        assert_eq!(latencies.len(), 101);
    }
}
