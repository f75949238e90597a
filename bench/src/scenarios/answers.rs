//! Scenario 1: `POST /api/unlock/answers` at rising rates up to saturation, against the raw
//! argon2id bound measured in the same run; then every registered person submitting at once.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use protocol::api::UnlockQuestions;

use crate::{
    api::{answers, Api, Who},
    load::open_loop,
    mailbox::Mailbox,
    people::{KeyPool, Person},
    process::{Backend, CpuSplit, Engine, Probe},
    report::{Report, Row},
    scenarios::{import, raw_argon2_rate, register_all, together},
    Options,
};

const SCENARIO: &str = "1 answer checks";

pub async fn run(options: &Options, report: &mut Report, engine: &Engine) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let env = Backend::environment(&options.programs, engine, data.path());
    let (count, step) =
        if options.quick { (8, Duration::from_secs(2)) } else { (1000, Duration::from_secs(15)) };
    let pool = KeyPool::new(64);
    let people: Vec<Person> = (0..count).map(|i| pool.person(i, "ans")).collect();
    import(&options.programs, &env, &people)?;
    let backend = Backend::start(&options.programs, env).await?;
    let api = Api::new(&backend.url)?;
    let mailbox = Arc::new(Mailbox::new(data.path().join("mail")));
    let took = register_all(&api, &mailbox, &people).await?;
    report.note(format!(
        "{}: {count} people imported and registered through the API (4 argon2id answers each) in {:.1} s.",
        engine.name(),
        took.as_secs_f64()
    ));

    // The bound, on the same cores, the backend idle meanwhile: before the steps and again after
    // them, since a shared machine's speed drifts (5-second samples minutes apart differed by
    // up to 15 % on 2026-12-03); the steps are held against the mean of the two.
    let seconds = if options.quick { 1.0 } else { 5.0 };
    let raw_before = raw_argon2_rate(&options.programs, seconds)?;
    let asked = api.start_unlock(&people[0]).await?.questions.len().max(1);
    let offered = raw_before / asked as f64;

    let fractions: &[f64] = if options.quick { &[0.5] } else { &[0.25, 0.5, 0.75, 0.9, 1.0, 1.25] };
    let people = Arc::new(people);
    let mut next = 0;
    let mut steps = Vec::new();
    for fraction in fractions {
        let rate = offered * fraction;
        let n = ((rate * step.as_secs_f64()).ceil() as usize).clamp(1, people.len());
        // Each person has one open attempt at a time: n different people, each a new attempt.
        let first = next;
        let attempts = start_attempts(&api, &people, first, n).await?;
        next = (first + n) % people.len();
        let probe = Probe::start(backend.pid());
        let outcome = submit(&api, &people, attempts, rate, first).await;
        steps.push((rate, outcome, probe.finish().await));
    }
    let raw_after = raw_argon2_rate(&options.programs, seconds)?;
    let raw = (raw_before + raw_after) / 2.0;
    let limit = raw / asked as f64;
    report.note(format!(
        "{}: raw argon2id (m=19 MiB, t=2, p=1) {raw_before:.1} verifications/s on every core before the steps, {raw_after:.1}/s after, {raw:.1}/s in the mean; an unlock asks {asked} questions, so the bound is {limit:.1} answer checks/s.",
        engine.name()
    ));
    let mut best = 0.0f64;
    let mut costs = Vec::new();
    for (rate, outcome, usage) in steps {
        let throughput = outcome.throughput(|s| s == 200);
        best = best.max(throughput);
        costs.push(cost(rate, engine, usage.split.per_request_ms(outcome.answered(|s| s == 200))));
        let mut row =
            Row::from_outcome(SCENARIO, engine.name(), format!("{rate:.1}/s"), &outcome, |s| s == 200);
        row = row.used(usage);
        row.limit = format!("≥ 90 % of {limit:.1}/s");
        row.measured = format!("{throughput:.1}/s");
        row.ratio = format!("{:.2}", throughput / limit);
        report.row(row);
    }
    report.note(format!(
        "{}: the most answer checks served in a second, at any offered rate: {best:.1}/s = {:.0} % of the raw bound.",
        engine.name(),
        100.0 * best / limit
    ));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    report.note(format!(
        "{}: CPU per answer check (the bound allows {:.1} ms of argon2, {asked} × {:.1} ms, on {cores} cores): {}.",
        engine.name(),
        1000.0 * cores / limit,
        1000.0 * cores / raw,
        costs.join("; ")
    ));

    // Everyone at once: memory stays bounded and every request is answered.
    let attempts = start_attempts(&api, &people, 0, people.len()).await?;
    let before = backend.rss_mb()?;
    let probe = Probe::start(backend.pid());
    let outcome = submit(&api, &people, attempts, f64::INFINITY, 0).await;
    let usage = probe.finish().await;
    let rss = usage.peak_rss_mb;
    tokio::time::sleep(if options.quick { Duration::from_secs(1) } else { Duration::from_secs(20) }).await;
    let after = backend.rss_mb()?;
    let mut row =
        Row::from_outcome(SCENARIO, engine.name(), format!("{} at once", people.len()), &outcome, |s| {
            s == 200
        });
    row = row.used(usage);
    row.limit = "RSS ≤ 300 MB".into();
    row.measured = format!("{rss:.0} MB peak");
    row.ratio = format!("{:.2}", rss / 300.0);
    report.row(row);
    report.note(format!(
        "{}: {} submissions at once: answers {}; RSS {before:.0} MB before, {rss:.0} MB at peak, {after:.0} MB after {} s idle.",
        engine.name(),
        people.len(),
        outcome.status_summary(),
        if options.quick { 1 } else { 20 }
    ));
    Ok(())
}

/// What one answer check cost the machine at `rate`, part by part.
fn cost(rate: f64, engine: &Engine, each: CpuSplit) -> String {
    // On SQLite, PostgreSQL's share is the bench's server idling beside it.
    let database = if *engine == Engine::Sqlite { "PostgreSQL, not in use," } else { "PostgreSQL" };
    format!(
        "at {rate:.1}/s argon2 {:.1} ms, the rest of the backend {:.1} ms, {database} {:.1} ms, the load generator {:.1} ms",
        each.argon2, each.backend, each.database, each.harness
    )
}

/// New unlock attempts (their questions) for people `first..first + n` (wrapping).
async fn start_attempts(
    api: &Api,
    people: &Arc<Vec<Person>>,
    first: usize,
    n: usize,
) -> anyhow::Result<Vec<UnlockQuestions>> {
    together(n, 16, |i| {
        let (api, people) = (api.clone(), people.clone());
        async move {
            let person = &people[(first + i) % people.len()];
            api.start_unlock(person).await.with_context(|| format!("starting {}'s unlock", person.user_id))
        }
    })
    .await
}

/// The right answers to each attempt, at `rate`; attempt `i` is person `first + i`'s.
async fn submit(
    api: &Api,
    people: &Arc<Vec<Person>>,
    attempts: Vec<UnlockQuestions>,
    rate: f64,
    first: usize,
) -> crate::load::Outcome {
    let attempts = Arc::new(attempts);
    open_loop(rate, attempts.len(), |i| {
        let (api, people, attempts) = (api.clone(), people.clone(), attempts.clone());
        async move {
            let person = &people[(first + i) % people.len()];
            api.post_status("/api/unlock/answers", Who::person(person), &answers(&attempts[i], true)).await
        }
    })
    .await
}
