//! The activity chart: memories added and read per day and per app, as stacked bars in
//! an inline SVG built on the server (no script, no inline style: colours are SVG
//! presentation attributes, which the page's Content Security Policy allows), with the
//! same figures as a table for screen readers and for people who prefer numbers.

use maud::{Markup, html};

/// Bar colours, one per app in turn; each has at least 3:1 contrast on white.
const PALETTE: [&str; 8] = [
    "#1d4ed8", "#b45309", "#047857", "#be185d", "#6d28d9", "#0e7490", "#4d7c0f", "#b91c1c",
];

const WIDTH: u32 = 640;
const PANEL_HEIGHT: u32 = 120;
const LEFT: u32 = 36;
const TOP: u32 = 22;
const GAP: u32 = 52;

/// One app's daily figures, aligned with [`Activity::days`].
pub(super) struct AppSeries {
    pub(super) label: String,
    pub(super) added: Vec<u64>,
    pub(super) read: Vec<u64>,
}

/// Daily figures for a run of days.
pub(super) struct Activity {
    /// The days, as labels (`Dec 6`), oldest first.
    pub(super) days: Vec<String>,
    pub(super) apps: Vec<AppSeries>,
}

impl Activity {
    fn total(&self, pick: fn(&AppSeries) -> &[u64]) -> u64 {
        self.apps
            .iter()
            .map(|app| pick(app).iter().sum::<u64>())
            .sum()
    }
}

fn added(series: &AppSeries) -> &[u64] {
    &series.added
}

fn read(series: &AppSeries) -> &[u64] {
    &series.read
}

/// The colour of the `index`th app.
pub(super) fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// The chart, its legend and its table.
pub(super) fn render(activity: &Activity) -> Markup {
    let added_total = activity.total(added);
    let read_total = activity.total(read);
    let days = activity.days.len();
    let summary = format!(
        "Over the last {days} days: {added_total} memories added and {read_total} read, by {} apps.",
        activity.apps.len()
    );
    let height = TOP * 2 + PANEL_HEIGHT * 2 + GAP;
    html! {
        figure.chart {
            figcaption { "Activity, last " (days) " days" }
            svg viewBox={ "0 0 " (WIDTH) " " (height) } role="img" aria-labelledby="chart-title chart-desc" {
                title id="chart-title" { "Memories added and read per day, per app" }
                desc id="chart-desc" { (summary) }
                (panel(activity, added, "Added", TOP))
                (panel(activity, read, "Read", TOP * 2 + PANEL_HEIGHT + GAP - TOP))
            }
            ul.legend {
                @for (index, app) in activity.apps.iter().enumerate() {
                    li {
                        svg.swatch viewBox="0 0 10 10" aria-hidden="true" {
                            rect width="10" height="10" fill=(colour(index)) {}
                        }
                        (app.label)
                    }
                }
            }
            p.summary { (summary) }
            details {
                summary { "Show as a table" }
                (table(activity))
            }
        }
    }
}

/// One panel of stacked bars, its top at `top`.
fn panel(activity: &Activity, pick: fn(&AppSeries) -> &[u64], title: &str, top: u32) -> Markup {
    let days = activity.days.len().max(1);
    let totals: Vec<u64> = (0..days)
        .map(|day| {
            activity
                .apps
                .iter()
                .map(|app| pick(app).get(day).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = nice_max(totals.iter().copied().max().unwrap_or(0));
    let plot_width = WIDTH - LEFT - 4;
    let slot = f64::from(plot_width) / days as f64;
    let bar = (slot * 0.75).max(1.0);
    let scale = f64::from(PANEL_HEIGHT) / max as f64;
    let bottom = top + PANEL_HEIGHT;
    let mut bars = Vec::new();
    for day in 0..days {
        let mut y = f64::from(bottom);
        let x = f64::from(LEFT) + slot * day as f64 + (slot - bar) / 2.0;
        for (index, app) in activity.apps.iter().enumerate() {
            let value = pick(app).get(day).copied().unwrap_or(0);
            if value == 0 {
                continue;
            }
            let h = value as f64 * scale;
            y -= h;
            bars.push((x, y, h, colour(index)));
        }
    }
    let last = activity.days.len().saturating_sub(1);
    html! {
        g {
            text.panel-title x=(LEFT) y=(top - 8) { (title) }
            line.axis x1=(LEFT) y1=(bottom) x2=(WIDTH - 4) y2=(bottom) stroke="#57606a" {}
            text.tick x=(LEFT - 4) y=(top + 4) text-anchor="end" { (max) }
            text.tick x=(LEFT - 4) y=(bottom) text-anchor="end" { "0" }
            line x1=(LEFT) y1=(top) x2=(WIDTH - 4) y2=(top) stroke="#d0d7de" stroke-dasharray="3 3" {}
            @for (x, y, h, fill) in &bars {
                rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{bar:.1}")) height=(format!("{h:.1}")) fill=(fill) {}
            }
            @if let Some(first) = activity.days.first() {
                text.tick x=(LEFT) y=(bottom + 14) { (first) }
            }
            @if last > 0 {
                text.tick x=(WIDTH - 4) y=(bottom + 14) text-anchor="end" { (activity.days[last]) }
            }
        }
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `value` (at least 1), for the y axis.
fn nice_max(value: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = step.saturating_mul(factor);
            if candidate >= value {
                return candidate;
            }
        }
        step = step.saturating_mul(10);
        if step == u64::MAX {
            return u64::MAX;
        }
    }
}

/// The days with any activity, per app.
fn table(activity: &Activity) -> Markup {
    html! {
        table {
            caption { "Memories added and read per day" }
            thead { tr { th scope="col" { "Day" } th scope="col" { "App" } th scope="col" { "Added" } th scope="col" { "Read" } } }
            tbody {
                @for (day, label) in activity.days.iter().enumerate() {
                    @for app in &activity.apps {
                        @let a = app.added.get(day).copied().unwrap_or(0);
                        @let r = app.read.get(day).copied().unwrap_or(0);
                        @if a + r > 0 {
                            tr { td { (label) } td { (app.label) } td { (a) } td { (r) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(1), 1);
        assert_eq!(nice_max(3), 5);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(499), 500);
    }

    #[test]
    fn renders_bars_and_a_table_without_inline_style() {
        let activity = Activity {
            days: vec!["Dec 5".into(), "Dec 6".into()],
            apps: vec![AppSeries {
                label: "<ChatGPT>".into(),
                added: vec![2, 0],
                read: vec![1, 3],
            }],
        };
        let svg = render(&activity).into_string();
        assert!(svg.contains("&lt;ChatGPT&gt;"), "labels are escaped");
        assert!(!svg.contains("style="));
        assert_eq!(svg.matches("<rect x=").count(), 3);
        assert!(svg.contains("2 memories added and 4 read"));
        assert!(svg.contains("<td>Dec 6</td>"));
    }
}
