//! The report as a picture: one stacked bar a day of registrations, unlocks (self-service and at
//! the desk), lockouts and lockouts cleared, drawn as inline SVG by the console. The numbers stay
//! in the table and the CSV; the chart's text alternative says what it shows in words (periods,
//! totals, the busiest day), so a screen reader user gets the picture's point too.

use leptos::prelude::*;
use protocol::ra::{ReportCounts, ReportDay};

/// Plot area in the SVG's own units; the SVG scales to the page's width.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
/// Room on the left for the axis labels, below for the dates.
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;

/// The series, bottom to top, with the NHS palette colours they are drawn in (the legend's
/// swatches, `ra-chart__swatch--{index}` in `ra.css`, are the same colours).
const SERIES: [(&str, &str); 4] = [
    ("Registrations", "#005eb8"),
    ("Unlocks", "#007f3b"),
    ("Lockouts", "#da291c"),
    ("Lockouts cleared", "#330072"),
];

fn values(counts: &ReportCounts) -> [u64; 4] {
    [counts.registrations, counts.unlocks + counts.desk_unlocks, counts.lockouts, counts.lockouts_cleared]
}

/// One rectangle of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub series: usize,
}

/// The rectangles, oldest day on the left, and the value the top of the plot stands for.
pub fn segments(days: &[ReportDay]) -> (Vec<Segment>, u64) {
    let top = days.iter().map(|d| values(&d.counts).iter().sum::<u64>()).max().unwrap_or(0).max(1);
    let slot = (WIDTH - LEFT) / days.len().max(1) as f64;
    // A gap between days while they are wide enough to show one.
    let width = if slot > 4.0 { slot * 0.8 } else { slot };
    let scale = (HEIGHT - BOTTOM) / top as f64;
    let mut out = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - width) / 2.0;
        let mut base = HEIGHT - BOTTOM;
        for (series, value) in values(&day.counts).into_iter().enumerate() {
            if value == 0 {
                continue;
            }
            let height = value as f64 * scale;
            base -= height;
            out.push(Segment { x, y: base, width, height, series });
        }
    }
    (out, top)
}

/// The chart in words: what it shows, the totals, and the busiest day.
pub fn description(days: &[ReportDay], totals: &ReportCounts) -> String {
    let (first, last) = match (days.first(), days.last()) {
        (Some(first), Some(last)) => (first.day.as_str(), last.day.as_str()),
        _ => return "No days in this period.".into(),
    };
    let [registrations, unlocks, lockouts, cleared] = values(totals);
    let busiest = days
        .iter()
        .map(|d| (values(&d.counts).iter().sum::<u64>(), d.day.as_str()))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(a.1)));
    let busiest = match busiest {
        Some((0, _)) | None => "Nothing happened on any day.".to_owned(),
        Some((n, day)) => format!("The busiest day was {day}, with {n}."),
    };
    format!(
        "Bar chart, one bar a day from {first} to {last}. Totals: {registrations} registrations, \
         {unlocks} unlocks, {lockouts} lockouts and {cleared} lockouts cleared. {busiest}"
    )
}

#[component]
pub fn ReportChart(days: Vec<ReportDay>, totals: ReportCounts) -> impl IntoView {
    let (bars, top) = segments(&days);
    let text = description(&days, &totals);
    let rects = bars
        .into_iter()
        .map(|s| {
            view! { <rect x=s.x y=s.y width=s.width height=s.height fill=SERIES[s.series].1 /> }
        })
        .collect_view();
    let label = |i: usize| days.get(i).map(|d| d.day.clone()).unwrap_or_default();
    let (first, last) = (label(0), label(days.len().saturating_sub(1)));
    let view_box = format!("0 0 {WIDTH} {HEIGHT}");
    let axis_y = HEIGHT - BOTTOM;
    let legend = SERIES
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            // A class, not a style attribute: the content security policy allows no inline styles.
            view! {
                <li><span class=format!("ra-chart__swatch ra-chart__swatch--{i}") aria-hidden="true"></span>{*name}</li>
            }
        })
        .collect_view();
    view! {
        <figure class="ra-chart" data-testid="ra-report-chart">
            <svg viewBox=view_box role="img" aria-labelledby="ra-chart-title ra-chart-desc">
                <title id="ra-chart-title">"Self-service activity per day"</title>
                <desc id="ra-chart-desc">{text.clone()}</desc>
                <line x1=LEFT y1=axis_y x2=WIDTH y2=axis_y stroke="#4c6272" stroke-width="1" />
                <line x1=LEFT y1="0" x2=LEFT y2=axis_y stroke="#4c6272" stroke-width="1" />
                <text x=LEFT - 6.0 y="12" text-anchor="end" font-size="12" fill="#212b32">{top}</text>
                <text x=LEFT - 6.0 y=axis_y text-anchor="end" font-size="12" fill="#212b32">"0"</text>
                {rects}
                <text x=LEFT y=HEIGHT - 6.0 font-size="12" fill="#212b32">{first}</text>
                <text x=WIDTH y=HEIGHT - 6.0 text-anchor="end" font-size="12" fill="#212b32">{last}</text>
            </svg>
            <figcaption>
                <ul class="ra-chart__legend">{legend}</ul>
                <p class="nhsuk-body-s" data-testid="ra-report-chart-text">{text}</p>
            </figcaption>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(day: &str, registrations: u64, unlocks: u64, lockouts: u64) -> ReportDay {
        ReportDay {
            day: day.into(),
            counts: ReportCounts { registrations, unlocks, lockouts, ..ReportCounts::default() },
        }
    }

    #[test]
    fn the_tallest_day_fills_the_plot_and_bars_stack_bottom_up() {
        let days = [day("2026-11-01", 2, 1, 0), day("2026-11-02", 0, 0, 0), day("2026-11-03", 1, 0, 1)];
        let (bars, top) = segments(&days);
        assert_eq!(top, 3);
        let first: Vec<&Segment> = bars.iter().filter(|s| s.x < 300.0).collect();
        assert_eq!(first.len(), 2, "two series on the first day, none drawn for a zero");
        assert!((first[0].height - 2.0 * (HEIGHT - BOTTOM) / 3.0).abs() < 1e-9);
        assert!((first[1].y - 0.0).abs() < 1e-9, "the tallest day reaches the top");
        assert!(first[1].y + first[1].height <= first[0].y + 1e-9, "unlocks sit on registrations");
        assert!(bars.iter().all(|s| s.x >= LEFT && s.x + s.width <= WIDTH + 1e-9));
    }

    #[test]
    fn a_year_of_days_fits_and_an_empty_period_has_no_bars() {
        let year: Vec<ReportDay> = (0..366).map(|i| day(&format!("d{i}"), 1, 0, 0)).collect();
        let (bars, _) = segments(&year);
        assert_eq!(bars.len(), 366);
        assert!(bars.iter().all(|s| s.x + s.width <= WIDTH + 1e-9));
        assert_eq!(segments(&[]).0, Vec::new());
    }

    #[test]
    fn the_description_says_the_period_totals_and_busiest_day() {
        let days = [day("2026-11-01", 2, 1, 0), day("2026-11-02", 0, 0, 0), day("2026-11-03", 1, 0, 1)];
        let totals =
            ReportCounts { registrations: 3, unlocks: 1, desk_unlocks: 1, lockouts: 1, lockouts_cleared: 0 };
        let text = description(&days, &totals);
        assert!(text.contains("from 2026-11-01 to 2026-11-03"), "{text}");
        assert!(text.contains("3 registrations, 2 unlocks, 1 lockouts and 0 lockouts cleared"), "{text}");
        assert!(text.contains("busiest day was 2026-11-01, with 3"), "{text}");
        let quiet = [day("2026-11-01", 0, 0, 0)];
        assert!(description(&quiet, &ReportCounts::default()).contains("Nothing happened"));
    }
}
