//! `target/bench/report.md`: one table row per measurement, each beside its limit, and the notes
//! that say how the numbers were made. Rewritten after every scenario, so a run stopped half-way
//! still leaves what it measured.

use std::{fmt::Write as _, path::PathBuf};

use crate::load::Outcome;

/// A check's ratio when it held, and when it did not.
pub const EXACT: &str = "exact";
pub const NOT_EXACT: &str = "NOT exact";

#[derive(Debug, Clone, Default)]
pub struct Row {
    pub scenario: String,
    pub engine: String,
    /// What was offered: a rate, a concurrency, a size.
    pub load: String,
    pub requests: Option<u64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub errors: Option<u64>,
    pub rss_mb: Option<f64>,
    /// The backend's CPU over the run, in % of one core.
    pub cpu_percent: Option<f64>,
    /// The target or bound it is held against, in words with its unit.
    pub limit: String,
    /// What was measured against the limit, in the limit's unit.
    pub measured: String,
    /// `measured / limit`, or `—`.
    pub ratio: String,
}

impl Row {
    /// A row for a load run: latency and counts from `outcome`, errors those `ok` refuses.
    pub fn from_outcome(
        scenario: &str,
        engine: &str,
        load: String,
        outcome: &Outcome,
        ok: impl Fn(u16) -> bool,
    ) -> Self {
        Self {
            scenario: scenario.to_owned(),
            engine: engine.to_owned(),
            load,
            requests: Some(outcome.count()),
            p50: Some(outcome.millis(0.50)),
            p99: Some(outcome.millis(0.99)),
            max: Some(outcome.max_millis()),
            errors: Some(outcome.count() - outcome.answered(ok)),
            ..Self::default()
        }
    }

    /// The backend's peak RSS and CPU over the run.
    pub fn used(mut self, usage: crate::process::Usage) -> Self {
        self.rss_mb = Some(usage.peak_rss_mb);
        self.cpu_percent = Some(usage.cpu_percent);
        self
    }

    /// Held against a latency target: the p99 over it.
    pub fn p99_within(mut self, target_ms: f64) -> Self {
        let p99 = self.p99.unwrap_or(f64::NAN);
        self.limit = format!("p99 ≤ {target_ms} ms");
        self.measured = format!("{p99:.1} ms");
        self.ratio = format!("{:.2}", p99 / target_ms);
        self
    }
}

#[derive(Debug)]
pub struct Report {
    path: PathBuf,
    title: String,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    pub fn new(path: PathBuf, title: String) -> Self {
        Self { path, title, rows: Vec::new(), notes: Vec::new() }
    }

    pub fn row(&mut self, row: Row) {
        println!(
            "  {} | {} | {} | p99 {} | errors {} | RSS {} | {} → {} ({})",
            row.scenario,
            row.engine,
            row.load,
            number(row.p99),
            row.errors.map_or("—".into(), |e| e.to_string()),
            number(row.rss_mb),
            row.limit,
            row.measured,
            row.ratio
        );
        self.rows.push(row);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        println!("  note: {note}");
        self.notes.push(note);
    }

    /// The rows where a request failed or a limit that must be exact was not: what fails a quick
    /// run (a timing never does).
    pub fn failures(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.errors.unwrap_or(0) > 0 || r.ratio == NOT_EXACT)
            .map(|r| {
                format!(
                    "{} | {} | {}: {} errors, {}",
                    r.scenario,
                    r.engine,
                    r.load,
                    r.errors.unwrap_or(0),
                    r.measured
                )
            })
            .collect()
    }

    pub fn write(&self) -> anyhow::Result<()> {
        if let Some(folder) = self.path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&self.path, self.markdown())?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut md = format!("# {}\n\n", self.title);
        md.push_str(
            "| scenario | engine | load | requests | p50 ms | p99 ms | max ms | errors | RSS MB | CPU % | limit | measured | ratio |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.scenario,
                r.engine,
                r.load,
                r.requests.map_or("—".into(), |n| n.to_string()),
                number(r.p50),
                number(r.p99),
                number(r.max),
                r.errors.map_or("—".into(), |e| e.to_string()),
                number(r.rss_mb),
                r.cpu_percent.map_or("—".into(), |c| format!("{c:.0}")),
                or_dash(&r.limit),
                or_dash(&r.measured),
                or_dash(&r.ratio),
            );
        }
        if !self.notes.is_empty() {
            md.push_str("\n## Notes\n\n");
            for note in &self.notes {
                let _ = writeln!(md, "- {note}");
            }
        }
        md
    }
}

fn number(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "—".into(),
    }
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "—"
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_one_table_line_beside_its_limit() {
        let mut report = Report::new(PathBuf::from("/nonexistent/report.md"), "Bench".into());
        report.rows.push(
            Row {
                scenario: "routes".into(),
                engine: "SQLite".into(),
                load: "500/s".into(),
                requests: Some(5000),
                p50: Some(1.234),
                p99: Some(4.0),
                max: Some(120.0),
                errors: Some(0),
                ..Row::default()
            }
            .p99_within(10.0),
        );
        report.notes.push("2 cores".into());
        let md = report.markdown();
        assert!(
            md.contains(
                "| routes | SQLite | 500/s | 5000 | 1.2 | 4.0 | 120 | 0 | — | — | p99 ≤ 10 ms | 4.0 ms | 0.40 |"
            ),
            "{md}"
        );
        assert!(md.ends_with("## Notes\n\n- 2 cores\n"), "{md}");
    }
}
