//! Open-loop load: request `i` is due at `start + i / rate` whatever became of the earlier ones,
//! and its latency is counted from when it was due, not from when it was sent. A slow answer
//! therefore shows in the numbers instead of slowing the clients down (no coordinated omission).

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use hdrhistogram::Histogram;
// Tokio's clock, so the unit tests can run on paused time.
use tokio::{task::JoinSet, time::Instant};

/// What one run of requests came to.
#[derive(Debug)]
pub struct Outcome {
    /// Microseconds from each request's due time to its answer.
    pub latency: Histogram<u64>,
    /// Answers by HTTP status; `0` for no answer at all (connection refused, reset, timed out).
    pub statuses: BTreeMap<u16, u64>,
    /// From the first request's due time to the last answer.
    pub elapsed: Duration,
}

impl Outcome {
    pub fn count(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// Answers whose status `ok` accepts.
    pub fn answered(&self, ok: impl Fn(u16) -> bool) -> u64 {
        self.statuses.iter().filter(|(status, _)| ok(**status)).map(|(_, n)| n).sum()
    }

    /// Accepted answers per second over the whole run.
    pub fn throughput(&self, ok: impl Fn(u16) -> bool) -> f64 {
        self.answered(ok) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency quantile in milliseconds.
    pub fn millis(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_millis(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }

    /// `200×95 429×5`: every status seen, for the report.
    pub fn status_summary(&self) -> String {
        let parts: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, n)| if *status == 0 { format!("none×{n}") } else { format!("{status}×{n}") })
            .collect();
        parts.join(" ")
    }
}

/// The answers so far, shared by the tasks that wait for them.
#[derive(Debug, Clone)]
struct Recorder(Arc<Mutex<Answers>>);

/// The latencies and the statuses seen.
type Answers = (Histogram<u64>, BTreeMap<u16, u64>);

impl Recorder {
    fn new() -> Self {
        // 1 µs to 10 minutes at 3 significant figures: constant bounds, so this cannot fail.
        #[allow(clippy::expect_used, reason = "constant, valid bounds")]
        let histogram = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        Self(Arc::new(Mutex::new((histogram, BTreeMap::new()))))
    }

    fn record(&self, status: u16, since: Instant) {
        let micros = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        let mut results = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Saturates at the top bound rather than failing: a 10-minute answer is its own verdict.
        results.0.saturating_record(micros);
        *results.1.entry(status).or_default() += 1;
    }

    fn outcome(&self, elapsed: Duration) -> Outcome {
        let results = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Outcome { latency: results.0.clone(), statuses: results.1.clone(), elapsed }
    }
}

/// Sends `count` requests at `rate` a second (`f64::INFINITY`: all at once). `request(i)` makes
/// request `i` and gives its HTTP status (`Err`: no answer).
pub async fn open_loop<F, Fut>(rate: f64, count: usize, request: F) -> Outcome
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<u16>> + Send + 'static,
{
    let results = Recorder::new();
    let start = Instant::now();
    let mut running = JoinSet::new();
    for i in 0..count {
        let due = if rate.is_finite() { start + Duration::from_secs_f64(i as f64 / rate) } else { start };
        tokio::time::sleep_until(due).await;
        let sent = request(i);
        let results = results.clone();
        running.spawn(async move {
            results.record(sent.await.unwrap_or(0), due);
        });
    }
    while running.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    results.outcome(elapsed)
}

/// Runs `count` requests through `workers` clients, each sending its next as soon as its last
/// was answered (closed loop): how the burst was made, "64 connections saturating".
pub async fn closed_loop<F, Fut>(workers: usize, duration: Duration, request: F) -> Outcome
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<u16>> + Send + 'static,
{
    let request = Arc::new(request);
    let results = Recorder::new();
    let start = Instant::now();
    let mut running = JoinSet::new();
    for worker in 0..workers {
        let (request, results) = (request.clone(), results.clone());
        running.spawn(async move {
            let mut i = worker;
            while start.elapsed() < duration {
                let sent = Instant::now();
                results.record(request(i).await.unwrap_or(0), sent);
                i += workers;
            }
        });
    }
    while running.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    results.outcome(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_answer_counts_from_when_it_was_due_and_does_not_delay_the_next() {
        // Request 0 takes 1 s; at 10 a second, requests 1..10 are still sent on time.
        let outcome = open_loop(10.0, 10, |i| async move {
            tokio::time::sleep(Duration::from_millis(if i == 0 { 1000 } else { 5 })).await;
            Ok(if i == 9 { 503 } else { 200 })
        })
        .await;
        assert_eq!(outcome.count(), 10);
        assert_eq!(outcome.answered(|s| s == 200), 9);
        assert_eq!(outcome.status_summary(), "200×9 503×1");
        assert!((995.0..=1010.0).contains(&outcome.max_millis()), "{}", outcome.max_millis());
        assert!(outcome.millis(0.5) < 10.0, "the others were not held up: {}", outcome.millis(0.5));
        // The last was due at 0.9 s and answered 5 ms later; the first ended at 1 s.
        assert!(
            outcome.elapsed >= Duration::from_millis(1000) && outcome.elapsed < Duration::from_millis(1100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_is_recorded_as_status_zero() {
        let outcome = open_loop(f64::INFINITY, 3, |i| async move {
            if i == 1 {
                anyhow::bail!("connection refused")
            }
            Ok(204)
        })
        .await;
        assert_eq!(outcome.status_summary(), "none×1 204×2");
    }
}
