//! Scenario 3: a million people in PostgreSQL, brought in by the bulk path (`import-cards`, timed),
//! then the RA console's reads: search by part of a name, by user id and by card GUID, one
//! person's audit trail, and the 366-day report.

use std::sync::Arc;

use anyhow::Context;

use crate::{
    api::{Api, Who},
    load::open_loop,
    people::{KeyPool, Person},
    process::{Backend, Engine, Probe},
    report::{Report, Row},
    scenarios::import,
    Options,
};

const SCENARIO: &str = "3 a million people";
const TARGET_MS: f64 = 50.0;

pub async fn run(options: &Options, report: &mut Report, database: &str) -> anyhow::Result<()> {
    let engine = Engine::Postgres(database.to_owned());
    let (rate, seconds) = if options.quick { (20.0, 1.0) } else { (100.0, 10.0) };
    let requests = (rate * seconds) as usize;
    let officers = 20;
    let data = tempfile::tempdir()?;
    let env = Backend::environment(&options.programs, &engine, data.path());
    let pool = KeyPool::new(256);
    let people: Vec<Person> = tokio::task::spawn_blocking({
        let count = options.people;
        move || {
            (0..count + officers)
                .map(|i| {
                    let mut person = pool.person(i, "mil");
                    if i >= count {
                        person.roles = "ra";
                    }
                    person
                })
                .collect()
        }
    })
    .await?;
    let took = import(&options.programs, &env, &people)?;
    report.note(format!(
        "PostgreSQL: {} people and their cards brought in by `backend admin import-cards` in {:.1} s ({:.0} rows/s).",
        options.people,
        took.as_secs_f64(),
        options.people as f64 / took.as_secs_f64()
    ));
    let (rows, took) = seed_history(database, options.people)?;
    report.note(format!(
        "PostgreSQL: a year of activity for the report and the audit pages, {rows} audit rows (per day: {}), written straight into `audit_log` with SQL in {:.1} s: the API would take days to make them, and their hash chain is not valid (this scenario does not verify it).",
        HISTORY_PER_DAY.iter().map(|(event, n)| format!("{n} {event}")).collect::<Vec<_>>().join(", "),
        took.as_secs_f64()
    ));
    let backend = Backend::start(&options.programs, env).await?;
    let api = Api::new(&backend.url)?;
    let officers: Arc<Vec<Person>> = Arc::new(people[options.people..].to_vec());
    let cookies: Arc<Vec<String>> = {
        let mut cookies = Vec::new();
        for officer in officers.iter() {
            cookies.push(api.sign_in(officer).await.context("signing an officer in")?);
        }
        Arc::new(cookies)
    };
    // Spread over the population, so no one page of the index is always the one read.
    let step = (options.people / 997).max(1);
    let sample: Arc<Vec<Person>> =
        Arc::new((0..options.people).step_by(step).map(|i| people[i].clone()).collect());
    drop(people);
    let today = days_to_date(now_days());
    let year_ago = days_to_date(now_days() - 365);

    type Query = fn(&Person, &str, &str) -> String;
    // Each read and the status it is answered with: a surname alone matches 62,500 people here,
    // more than a page shows, so the search asks the officer to narrow it (`too_many_matches`).
    let queries: [(&str, Query, u16); 6] = [
        (
            "search by part of a name",
            |p, _, _| {
                // The surname and the start of the number: "patel 1234" as an officer narrows it.
                let mut words = p.name.split(' ').skip(1);
                let last = words.next().unwrap_or("smith").to_lowercase();
                let number: String = words.next().unwrap_or("1").chars().take(4).collect();
                format!("/api/ra/users?q={last}%20{number}")
            },
            200,
        ),
        (
            "search by a common surname (too many: narrow it)",
            |p, _, _| {
                format!("/api/ra/users?q={}", p.name.split(' ').nth(1).unwrap_or("smith").to_lowercase())
            },
            400,
        ),
        ("search by user id", |p, _, _| format!("/api/ra/users?q={}", p.user_id), 200),
        ("search by card GUID", |p, _, _| format!("/api/ra/users?q={}", p.guid), 200),
        ("a person's audit trail", |p, _, _| format!("/api/ra/audit?user_id={}", p.user_id), 200),
        ("the 366-day report", |_, from, to| format!("/api/ra/report?from={from}&to={to}"), 200),
    ];
    for (what, query, expected) in queries {
        let probe = Probe::start(backend.pid());
        let outcome = open_loop(rate, requests, |i| {
            let (api, officers, cookies, sample) =
                (api.clone(), officers.clone(), cookies.clone(), sample.clone());
            let path = query(&sample[i % sample.len()], &year_ago, &today);
            async move {
                let n = i % officers.len();
                api.get_status(&path, Who { address: &officers[n].address, cookie: Some(&cookies[n]) }).await
            }
        })
        .await;
        let row = Row::from_outcome(SCENARIO, "PostgreSQL", format!("{rate:.0}/s {what}"), &outcome, |s| {
            s == expected
        })
        .p99_within(TARGET_MS);
        report.row(row.used(probe.finish().await));
    }
    Ok(())
}

/// A day's audit events in a deployment of 1.5 million holders: about 50,000 unlocks a month
/// are done at RA desks today, and self-service is to take most of them.
const HISTORY_PER_DAY: [(&str, u64); 9] = [
    ("card_unlocked", 1_800),
    ("card_unlocked_at_desk", 200),
    ("registration_completed", 400),
    ("selfservice_locked_out", 60),
    ("ra_lockout_cleared", 50),
    ("sign_in", 4_000),
    ("unlock_started", 2_200),
    ("unlock_questions_passed", 1_900),
    ("unlock_code_accepted", 1_850),
];

/// Writes a year of [`HISTORY_PER_DAY`], scaled to `people` (a million: as is), about the
/// imported people, oldest first; the rows written and how long it took.
fn seed_history(database: &str, people: usize) -> anyhow::Result<(u64, std::time::Duration)> {
    let scale = people as f64 / 1_000_000.0;
    let per_day: Vec<(&str, u64)> = HISTORY_PER_DAY
        .iter()
        .map(|(event, n)| (*event, ((*n as f64 * scale).ceil() as u64).max(1)))
        .collect();
    let day_total: u64 = per_day.iter().map(|(_, n)| n).sum();
    let total = day_total * 366;
    // Row g of a day is the event whose cumulative share covers g % day_total.
    let mut cases = String::new();
    let mut upto = 0;
    for (event, n) in &per_day {
        upto += n;
        cases.push_str(&format!(" WHEN g % {day_total} < {upto} THEN '{event}'"));
    }
    let sql = format!(
        "INSERT INTO audit_log (at, actor, event, subject, details, prev_hash, hash, keyed) \
         SELECT EXTRACT(EPOCH FROM now())::bigint - 366 * 86400 + g * (366 * 86400) / {total}, 'anonymous', \
                CASE{cases} END, 'mil' || lpad(((g * 7919) % {people})::text, 7, '0'), '{{}}', '\\x00'::bytea, \
                sha256(('history ' || g)::bytea), 1 \
         FROM generate_series(0::bigint, {total} - 1) AS g"
    );
    let started = std::time::Instant::now();
    let status = std::process::Command::new("psql")
        // The checkpoint writes the load's gigabytes back now: left to run during the reads, it
        // made the one read that also writes (the report, audited) wait on its disk flushes.
        .args([
            database,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &sql,
            "-c",
            "VACUUM ANALYZE",
            "-c",
            "CHECKPOINT",
        ])
        .status()
        .context("Failed to run psql")?;
    anyhow::ensure!(status.success(), "psql could not write the history");
    Ok((total, started.elapsed()))
}

fn now_days() -> i64 {
    let seconds =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(seconds / 86_400).unwrap_or(0)
}

/// `YYYY-MM-DD` of a day since the epoch (Howard Hinnant's civil-from-days).
fn days_to_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_dates() {
        assert_eq!(days_to_date(0), "1970-01-01");
        assert_eq!(days_to_date(20_789), "2026-12-02");
        assert_eq!(days_to_date(19_782), "2024-02-29");
    }
}
