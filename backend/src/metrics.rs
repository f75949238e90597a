//! Prometheus metrics, served on their own listener (`metrics_listen`, never the public port):
//! requests by matched route and status with latency histograms, the argon2 queue, the mail
//! outbox, the database pool, and every audited event — which is the journey funnel, since each
//! step of every journey is audited (`registration_started` … `card_unlocked`, lockouts, RA
//! clears, issuances). The text exposition format, written by hand: a dozen series need no
//! library.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        LazyLock, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use crate::{db::Database, time::now_unix};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(&mut self.counts) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The process's metrics; one set, as there is one server per process.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (method, matched route, status) → latency.
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    /// Audited events by name, counted when their transaction commits.
    events: Mutex<BTreeMap<String, u64>>,
    argon2_waiting: AtomicI64,
    argon2_wait: Mutex<Histogram>,
    mail_sent: AtomicU64,
    mail_failures: AtomicU64,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    pub fn audited<'a>(&self, events: impl IntoIterator<Item = &'a str>) {
        if let Ok(mut counts) = self.events.lock() {
            for event in events {
                *counts.entry(event.to_owned()).or_default() += 1;
            }
        }
    }

    /// An argon2 job is waiting for a worker; the guard records the wait when it is dropped.
    pub fn argon2_queued(&'static self) -> QueuedHash {
        self.argon2_waiting.fetch_add(1, Ordering::Relaxed);
        QueuedHash { metrics: self, since: Instant::now() }
    }

    pub fn mail_sent(&self) {
        self.mail_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn mail_failed(&self) {
        self.mail_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            let key = (method.to_owned(), route.to_owned(), status);
            requests.entry(key).or_default().observe(took.as_secs_f64());
        }
    }

    /// The exposition text; the outbox and the pool are read now.
    pub async fn render(&self, db: &Database) -> String {
        let mut out = String::new();
        out.push_str("# HELP selfservice_http_requests_seconds API requests by matched route and status.\n");
        out.push_str("# TYPE selfservice_http_requests_seconds histogram\n");
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), histogram) in requests.iter() {
                let labels = format!("method=\"{method}\",route=\"{}\",status=\"{status}\"", escape(route));
                histogram.render(&mut out, "selfservice_http_requests_seconds", &labels);
            }
        }
        out.push_str(
            "# HELP selfservice_audit_events_total Audited events (the journey funnel), by event.\n",
        );
        out.push_str("# TYPE selfservice_audit_events_total counter\n");
        if let Ok(events) = self.events.lock() {
            for (event, count) in events.iter() {
                let _ =
                    writeln!(out, "selfservice_audit_events_total{{event=\"{}\"}} {count}", escape(event));
            }
        }
        gauge(
            &mut out,
            "selfservice_argon2_waiting",
            "Answer hashes waiting for an argon2 worker.",
            self.argon2_waiting.load(Ordering::Relaxed),
        );
        out.push_str("# HELP selfservice_argon2_wait_seconds How long answer hashes waited for a worker.\n");
        out.push_str("# TYPE selfservice_argon2_wait_seconds histogram\n");
        if let Ok(wait) = self.argon2_wait.lock() {
            wait.render(&mut out, "selfservice_argon2_wait_seconds", "");
        }
        counter(
            &mut out,
            "selfservice_mail_sent_total",
            "Emails handed to the mail server.",
            self.mail_sent.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "selfservice_mail_send_failures_total",
            "Failed attempts to send an email (each is retried).",
            self.mail_failures.load(Ordering::Relaxed),
        );
        let (backlog, oldest) = outbox(db).await;
        gauge(&mut out, "selfservice_mail_backlog", "Emails queued and not yet sent.", backlog);
        gauge(
            &mut out,
            "selfservice_mail_oldest_unsent_seconds",
            "Age of the oldest unsent email (0: none).",
            oldest,
        );
        let pool = db.pool();
        gauge(
            &mut out,
            "selfservice_db_pool_connections",
            "Database connections open.",
            i64::from(pool.size()),
        );
        gauge(
            &mut out,
            "selfservice_db_pool_idle",
            "Database connections open and idle.",
            i64::try_from(pool.num_idle()).unwrap_or(i64::MAX),
        );
        out
    }
}

/// Counts the wait of one queued argon2 job.
#[derive(Debug)]
pub struct QueuedHash {
    metrics: &'static Metrics,
    since: Instant,
}

impl Drop for QueuedHash {
    fn drop(&mut self) {
        self.metrics.argon2_waiting.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut wait) = self.metrics.argon2_wait.lock() {
            wait.observe(self.since.elapsed().as_secs_f64());
        }
    }
}

async fn outbox(db: &Database) -> (i64, i64) {
    let row: Result<(i64, Option<i64>), _> = sqlx::query_as(
        "SELECT COUNT(*), MIN(created_at) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
    )
    .fetch_one(db.pool())
    .await;
    match row {
        Ok((backlog, oldest)) => (backlog, oldest.map_or(0, |at| (now_unix() - at).max(0))),
        // A scrape while the database is away says so by its absence of mail numbers, not an error.
        Err(_) => (-1, -1),
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Times each API request under its matched route (a route layer, so the path's template, never
/// the ids in it, is the label).
pub async fn observe(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    global().request(&method, &route, response.status().as_u16(), started.elapsed());
    response
}

/// The metrics listener's app: `GET /metrics`.
pub fn router(db: Database) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(db)
}

async fn scrape(State(db): State<Database>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], global().render(&db).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series the Grafana dashboard in `packaging/grafana` queries is one this module writes.
    #[test]
    fn the_dashboard_queries_only_series_that_exist() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../packaging/grafana/selfservice-dashboard.json")).unwrap();
        let exposed = [
            "selfservice_http_requests_seconds_count",
            "selfservice_http_requests_seconds_bucket",
            "selfservice_audit_events_total",
            "selfservice_argon2_waiting",
            "selfservice_argon2_wait_seconds_bucket",
            "selfservice_mail_sent_total",
            "selfservice_mail_send_failures_total",
            "selfservice_mail_backlog",
            "selfservice_mail_oldest_unsent_seconds",
            "selfservice_db_pool_connections",
            "selfservice_db_pool_idle",
        ];
        let mut histogram = Histogram::default();
        histogram.observe(0.02);
        let mut text = String::new();
        histogram.render(&mut text, "selfservice_argon2_wait_seconds", "");
        assert!(text.contains("selfservice_argon2_wait_seconds_bucket{le=\"0.025\"} 1"), "{text}");
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(panels.len() >= 6);
        for target in panels.iter().flat_map(|p| p["targets"].as_array().unwrap()) {
            let expr = target["expr"].as_str().unwrap();
            // Series names, not label values (an event may be called `selfservice_locked_out`).
            let unquoted: String = expr.split('"').step_by(2).collect();
            let names: Vec<&str> = unquoted
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("selfservice_"))
                .collect();
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                assert!(exposed.contains(&name), "{name} in {expr} is not exposed");
            }
        }
    }
}
