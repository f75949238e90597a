//! Scenario 4: two backend instances on one PostgreSQL database. The throughput of scenario 1's
//! saturating rate and of two of scenario 2's routes through one instance and through both; and
//! that the per-person limits and the outbox stay exact when the instances race.

use std::{sync::Arc, time::Duration};

use protocol::api::UnlockQuestions;

use crate::{
    api::{answers, Api, Who},
    load::{open_loop, Outcome},
    mailbox::Mailbox,
    people::{KeyPool, Person},
    process::{Backend, Engine},
    report::{Report, Row, EXACT, NOT_EXACT},
    scenarios::{import, raw_argon2_rate, register_all, together},
    Options,
};

const SCENARIO: &str = "4 two instances";

pub async fn run(options: &Options, report: &mut Report, database: &str) -> anyhow::Result<()> {
    let engine = Engine::Postgres(database.to_owned());
    let (count, seconds, rate) = if options.quick { (8, 2.0, 50.0) } else { (420, 15.0, 500.0) };
    let data = tempfile::tempdir()?;
    let env = Backend::environment(&options.programs, &engine, data.path());
    let pool = KeyPool::new(64);
    let people: Vec<Person> = (0..count).map(|i| pool.person(i, "two")).collect();
    import(&options.programs, &env, &people)?;
    // One data folder: the same keys and secrets, as two instances of one deployment have.
    let first = Backend::start(&options.programs, env.clone()).await?;
    let second = Backend::start(&options.programs, env).await?;
    let apis = Arc::new([Api::new(&first.url)?, Api::new(&second.url)?]);
    let mailbox = Arc::new(Mailbox::new(data.path().join("mail")));
    register_all(&apis[0], &mailbox, &people).await?;
    let people = Arc::new(people);
    let limit = raw_argon2_rate(&options.programs, if options.quick { 1.0 } else { 5.0 })?
        / apis[0].start_unlock(&people[0]).await?.questions.len().max(1) as f64;

    // Answer checks offered at 1.25 × the bound, through one instance and then through both.
    let offered = limit * 1.25;
    let n = ((offered * seconds) as usize).clamp(1, people.len() - 2);
    let mut throughput = [0.0; 2];
    for (slot, instances) in [1usize, 2].into_iter().enumerate() {
        let attempts = Arc::new(start_attempts(&apis[0], &people, n).await?);
        let outcome = open_loop(offered, n, |i| {
            let (apis, people, attempts) = (apis.clone(), people.clone(), attempts.clone());
            async move {
                let api = &apis[i % instances];
                api.post_status(
                    "/api/unlock/answers",
                    Who::person(&people[i + 2]),
                    &answers(&attempts[i], true),
                )
                .await
            }
        })
        .await;
        throughput[slot] = outcome.throughput(|s| s == 200);
        row(
            report,
            &format!("{offered:.1}/s answers, {instances} instance(s)"),
            &outcome,
            throughput[slot],
            limit,
        );
    }
    report.note(format!(
        "Two instances: answer checks {:.1}/s through one, {:.1}/s through two ({:.2}×). Both instances share this machine's cores and argon2 is CPU-bound, so a second instance cannot add argon2 capacity here; on separate machines each brings its own cores and the bound adds up (PostgreSQL does a few short writes per check).",
        throughput[0],
        throughput[1],
        throughput[1] / throughput[0].max(1e-9)
    ));

    // A route with no argon2: one person's profile, through one and then two instances.
    let cookies = Arc::new(
        together(people.len(), 32, |i| {
            let (apis, people) = (apis.clone(), people.clone());
            async move { apis[i % 2].sign_in(&people[i]).await }
        })
        .await?,
    );
    let requests = (rate * seconds) as usize;
    for instances in [1usize, 2] {
        let outcome = open_loop(rate, requests, |i| {
            let (apis, people, cookies) = (apis.clone(), people.clone(), cookies.clone());
            async move {
                let n = i % people.len();
                let who = Who { address: &people[n].address, cookie: Some(&cookies[n]) };
                apis[i % instances].get_status("/api/me", who).await
            }
        })
        .await;
        let mut row = Row::from_outcome(
            SCENARIO,
            "PostgreSQL",
            format!("{rate:.0}/s GET /api/me, {instances} instance(s)"),
            &outcome,
            |s| s == 200,
        )
        .p99_within(10.0);
        row.measured = format!(
            "{:.1} ms, {:.0}/s served",
            row.p99.unwrap_or(f64::NAN),
            outcome.throughput(|s| s == 200)
        );
        report.row(row);
    }

    // 50 wrong submissions of one attempt at once, split over both instances: 3 counted.
    let holder = &people[0];
    let attempt = Arc::new(apis[0].start_unlock(holder).await?);
    let outcome = open_loop(f64::INFINITY, 50, |i| {
        let (apis, people, attempt) = (apis.clone(), people.clone(), attempt.clone());
        async move {
            let (status, code) = apis[i % 2]
                .post_code("/api/unlock/answers", Who::person(&people[0]), &answers(&attempt, false))
                .await?;
            // The error code, folded into the status the load counts: 1 wrong, 2 locked out,
            // 3 the attempt already ended (the lockout ends it; nothing more is counted).
            Ok(match code.as_deref() {
                Some("answers_wrong") => 1,
                Some("locked_out") => 2,
                Some("attempt_expired") => 3,
                _ => status,
            })
        }
    })
    .await;
    let wrong = outcome.statuses.get(&1).copied().unwrap_or(0);
    let locked = outcome.statuses.get(&2).copied().unwrap_or(0);
    let ended = outcome.statuses.get(&3).copied().unwrap_or(0);
    report.row(Row {
        scenario: SCENARIO.into(),
        engine: "PostgreSQL".into(),
        load: "50 wrong answers at once, split".into(),
        requests: Some(outcome.count()),
        errors: Some(outcome.count() - wrong - locked - ended),
        limit: "exactly 3 tries counted".into(),
        // Anything else is shown by status (1: wrong, 2: locked out, 3: ended).
        measured: format!(
            "{wrong} wrong + 1 locking out; {} told locked out, {ended} that the attempt ended ({})",
            locked.saturating_sub(1),
            outcome.status_summary()
        ),
        ratio: if wrong == 2 && locked >= 1 && wrong + locked + ended == 50 { EXACT } else { NOT_EXACT }
            .into(),
        ..Row::default()
    });

    // Right answers to one attempt through both instances at once: one code, mailed once.
    let holder = &people[1];
    let attempt = Arc::new(apis[0].start_unlock(holder).await?);
    let outcome = open_loop(f64::INFINITY, 2, |i| {
        let (apis, people, attempt) = (apis.clone(), people.clone(), attempt.clone());
        async move {
            apis[i]
                .post_status("/api/unlock/answers", Who::person(&people[1]), &answers(&attempt, true))
                .await
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = mailbox.count_of(&holder.email, "unlock")?;
    report.row(Row {
        scenario: SCENARIO.into(),
        engine: "PostgreSQL".into(),
        load: "one attempt's right answers through both at once".into(),
        requests: Some(outcome.count()),
        errors: Some(outcome.count() - outcome.answered(|s| s == 200 || s == 400)),
        limit: "one code mailed, once".into(),
        measured: format!("answers {}; {mails} unlock mail(s)", outcome.status_summary()),
        ratio: if mails == 1 && outcome.answered(|s| s == 200) == 1 { EXACT } else { NOT_EXACT }.into(),
        ..Row::default()
    });
    Ok(())
}

fn row(report: &mut Report, load: &str, outcome: &Outcome, throughput: f64, limit: f64) {
    let mut row = Row::from_outcome(SCENARIO, "PostgreSQL", load.to_owned(), outcome, |s| s == 200);
    row.limit = format!("the bound, {limit:.1}/s");
    row.measured = format!("{throughput:.1}/s");
    row.ratio = format!("{:.2}", throughput / limit);
    report.row(row);
}

/// New attempts for people 2..n+2 (0 and 1 are kept for the exactness checks).
async fn start_attempts(
    api: &Api,
    people: &Arc<Vec<Person>>,
    n: usize,
) -> anyhow::Result<Vec<UnlockQuestions>> {
    together(n, 16, |i| {
        let (api, people) = (api.clone(), people.clone());
        async move { api.start_unlock(&people[i + 2]).await }
    })
    .await
}
