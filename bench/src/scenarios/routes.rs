//! Scenario 2: the routes that do no argon2 work, each at a fixed rate (500/s in the full run),
//! beside the floor: a route that does nothing (`GET /api/client-config`, no database) served by
//! the same process at the same rate.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use hdrhistogram::Histogram;
use protocol::api::{ChallengeIssued, UnlockCode, UnlockQuestions};

use crate::{
    api::{answers, Api, Who},
    disk,
    load::{open_loop, Outcome},
    mailbox::Mailbox,
    people::{KeyPool, Person},
    process::{Backend, Engine, Probe, Usage},
    report::{Report, Row},
    scenarios::{import, register_all, together},
    Options,
};

const SCENARIO: &str = "2 routes";
const TARGET_MS: f64 = 10.0;

pub async fn run(options: &Options, report: &mut Report, engine: &Engine) -> anyhow::Result<()> {
    let (count, officers, rate, seconds) =
        if options.quick { (6, 2, 50.0, 1.0) } else { (600, 50, 500.0, 10.0) };
    let requests = (rate * seconds) as usize;
    let data = tempfile::tempdir()?;
    let env = Backend::environment(&options.programs, engine, data.path());
    let pool = KeyPool::new(64);
    let mut people: Vec<Person> = (0..count + officers).map(|i| pool.person(i, "rts")).collect();
    for officer in &mut people[count..] {
        officer.roles = "ra";
    }
    import(&options.programs, &env, &people)?;
    let backend = Backend::start(&options.programs, env).await?;
    let api = Api::new(&backend.url)?;
    let mailbox = Arc::new(Mailbox::new(data.path().join("mail")));
    let officers: Arc<Vec<Person>> = Arc::new(people.split_off(count));
    let people = Arc::new(people);
    register_all(&api, &mailbox, &people).await?;
    let name = engine.name();
    let load = format!("{rate:.0}/s");
    let ok = |s: u16| (200..300).contains(&s);
    if let Engine::Sqlite = engine {
        let times = disk::flushes(data.path(), if options.quick { 20 } else { 200 })?;
        report.row(flush_row(name, &times, rate));
    }
    let mut measure = |route: &str, outcome: Outcome, usage: Usage| {
        let row =
            Row::from_outcome(SCENARIO, name, format!("{load} {route}"), &outcome, ok).p99_within(TARGET_MS);
        report.row(row.used(usage));
    };

    // The floor.
    let probe = Probe::start(backend.pid());
    let outcome = open_loop(rate, requests, |i| {
        let (api, people) = (api.clone(), people.clone());
        async move { api.get_status("/api/client-config", Who::person(&people[i % people.len()])).await }
    })
    .await;
    measure("GET /api/client-config (floor)", outcome, probe.finish().await);

    let probe = Probe::start(backend.pid());
    let outcome =
        open_loop(rate, requests, |i| {
            let (api, people) = (api.clone(), people.clone());
            async move {
                api.post_status("/api/sign-in/challenge", Who::person(&people[i % people.len()]), &()).await
            }
        })
        .await;
    measure("POST /api/sign-in/challenge", outcome, probe.finish().await);

    // Sign-ins: each a fresh challenge, signed by the card's 9A key beforehand.
    let signed = Arc::new(
        together(requests, 32, |i| {
            let (api, people) = (api.clone(), people.clone());
            async move {
                let person = &people[i % people.len()];
                let issued: ChallengeIssued =
                    api.post("/api/sign-in/challenge", Who::person(person), &()).await?;
                api.sign_in_request(person, issued)
            }
        })
        .await?,
    );
    let probe = Probe::start(backend.pid());
    let outcome =
        open_loop(rate, requests, |i| {
            let (api, people, signed) = (api.clone(), people.clone(), signed.clone());
            async move {
                api.post_status("/api/sign-in", Who::person(&people[i % people.len()]), &signed[i]).await
            }
        })
        .await;
    measure("POST /api/sign-in (9A signature checked)", outcome, probe.finish().await);

    let cookies = Arc::new(sign_in_all(&api, &people).await?);
    let probe = Probe::start(backend.pid());
    let outcome = open_loop(rate, requests, |i| {
        let (api, people, cookies) = (api.clone(), people.clone(), cookies.clone());
        async move {
            let n = i % people.len();
            api.get_status("/api/me", Who { address: &people[n].address, cookie: Some(&cookies[n]) }).await
        }
    })
    .await;
    measure("GET /api/me", outcome, probe.finish().await);

    let starts = Arc::new(
        together(requests, 32, |i| {
            let (api, people) = (api.clone(), people.clone());
            async move { api.unlock_start_request(&people[i % people.len()]).await }
        })
        .await?,
    );
    let probe = Probe::start(backend.pid());
    let outcome = open_loop(rate, requests, |i| {
        let (api, people, starts) = (api.clone(), people.clone(), starts.clone());
        async move {
            api.post_status("/api/unlock/start", Who::person(&people[i % people.len()]), &starts[i]).await
        }
    })
    .await;
    measure("POST /api/unlock/start (9E signature checked)", outcome, probe.finish().await);

    // The emailed code: each person past their questions once (argon2, beforehand), then each
    // code typed once, right, at the rate. There are only as many as there are people.
    let attempts: Arc<Vec<UnlockQuestions>> = Arc::new(
        together(people.len(), 8, |i| {
            let (api, people) = (api.clone(), people.clone());
            async move {
                let person = &people[i];
                let questions = api.start_unlock(person).await?;
                let status = api
                    .post_status("/api/unlock/answers", Who::person(person), &answers(&questions, true))
                    .await?;
                anyhow::ensure!(status == 200, "answers refused: {status}");
                Ok(questions)
            }
        })
        .await?,
    );
    let codes = Arc::new(
        together(people.len(), 32, |i| {
            let (mailbox, people) = (mailbox.clone(), people.clone());
            async move { mailbox.wait_for_code(&people[i].email, "unlock", Duration::from_secs(60)).await }
        })
        .await?,
    );
    let probe = Probe::start(backend.pid());
    let outcome = open_loop(rate, people.len(), |i| {
        let (api, people, attempts, codes) = (api.clone(), people.clone(), attempts.clone(), codes.clone());
        async move {
            let code = UnlockCode { attempt_id: attempts[i].attempt_id.clone(), code: codes[i].clone() };
            api.post_status("/api/unlock/code", Who::person(&people[i]), &code).await
        }
    })
    .await;
    measure("POST /api/unlock/code (right code)", outcome, probe.finish().await);

    // RA search: many officers, each signed in, searching by part of a name, a user id, a GUID.
    let officer_cookies = Arc::new(sign_in_all(&api, &officers).await?);
    let queries: Arc<Vec<String>> = Arc::new(
        people
            .iter()
            .take(50)
            .flat_map(|p| {
                // The name as typed ("fay smith 12" also matches "Fay Smith 120"): a surname
                // alone matches more people than a search shows.
                [p.name.to_lowercase().replace(' ', "%20"), p.user_id.clone(), p.guid.clone()]
            })
            .collect(),
    );
    let probe = Probe::start(backend.pid());
    let outcome = open_loop(rate, requests, |i| {
        let (api, officers, cookies, queries) =
            (api.clone(), officers.clone(), officer_cookies.clone(), queries.clone());
        async move {
            let n = i % officers.len();
            let path = format!("/api/ra/users?q={}", queries[i % queries.len()]);
            api.get_status(&path, Who { address: &officers[n].address, cookie: Some(&cookies[n]) }).await
        }
    })
    .await;
    measure("GET /api/ra/users?q= (RA search)", outcome, probe.finish().await);
    report.note(format!(
        "{name}: routes measured one at a time, each for {seconds:.0} s ({requests} requests), from {} people and {} RA officers; the unlock code route has one right code per person ({} requests).",
        people.len(),
        officers.len(),
        people.len()
    ));
    Ok(())
}

/// The data disk's flush times (µs) beside the rate the writing routes are offered at: SQLite's
/// one writer flushes once a commit, so `rate` flushes must fit in a second (`disk`).
fn flush_row(engine: &str, times: &Histogram<u64>, rate: f64) -> Row {
    let millis = |micros: f64| micros / 1000.0;
    let budget_ms = 1000.0 / rate;
    let mean = millis(times.mean());
    Row {
        scenario: SCENARIO.into(),
        engine: engine.into(),
        load: format!("4 KiB write + fdatasync ×{} in the data folder", times.len()),
        requests: Some(times.len()),
        p50: Some(millis(times.value_at_quantile(0.5) as f64)),
        p99: Some(millis(times.value_at_quantile(0.99) as f64)),
        max: Some(millis(times.max() as f64)),
        limit: format!("mean flush ≤ {budget_ms:.1} ms (one a commit at {rate:.0}/s)"),
        measured: format!("mean {mean:.2} ms ({:.0} flushes/s)", 1000.0 / mean),
        ratio: format!("{:.2}", mean / budget_ms),
        ..Row::default()
    }
}

/// Each person's session cookie.
async fn sign_in_all(api: &Api, people: &Arc<Vec<Person>>) -> anyhow::Result<Vec<String>> {
    together(people.len(), 32, |i| {
        let (api, people) = (api.clone(), people.clone());
        async move { api.sign_in(&people[i]).await.with_context(|| format!("signing {} in", people[i].user_id)) }
    })
    .await
}
