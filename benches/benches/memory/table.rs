//! The memory bench's figures, printed last as one table.

use std::time::Duration;

/// The figures of the run, printed last as one table.
#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    /// A figure, and its target with whether it is met (`None`: no target).
    pub(crate) fn row(
        &mut self,
        label: impl Into<String>,
        value: String,
        target: Option<(String, bool)>,
    ) {
        let target = match target {
            Some((goal, met)) => format!("{goal} {}", if met { "ok" } else { "BELOW TARGET" }),
            None => String::new(),
        };
        self.rows.push((label.into(), value, target));
    }

    /// Prints the rows; at smoke scale without targets, which only full-scale figures meet.
    pub(crate) fn print(&self) {
        let measuring = benches::report::measuring();
        if measuring {
            println!("\n== memory engine: figures ==");
        } else {
            println!("\n== memory engine: smoke scale, run `cargo bench` for figures ==");
        }
        for (label, value, target) in &self.rows {
            let target = if measuring { target.as_str() } else { "" };
            println!("{label:<78} {value:<44} {target}");
        }
    }
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
