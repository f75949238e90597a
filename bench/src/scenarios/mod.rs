//! The scenarios of issue 16, each beside its limit, and what they share: a fresh database and
//! data folder per backend, people brought in and registered through the real paths.

mod answers;
mod idle;
mod instances;
mod million;
mod routes;

use std::{future::Future, process::Command, sync::Arc, time::Instant};

use anyhow::{bail, Context};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    api::Api,
    mailbox::Mailbox,
    people::{import_csv, Person},
    process::{Backend, Engine, Programs},
    report::Report,
    Options,
};

pub const NAMES: [&str; 5] = ["idle", "answers", "routes", "million", "instances"];

pub async fn run(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    if let Some(only) = &options.only {
        if let Some(unknown) = only.iter().find(|name| !NAMES.contains(&name.as_str())) {
            bail!("unknown scenario {unknown} (known: {})", NAMES.join(", "));
        }
    }
    let wanted = |name: &str| options.only.as_ref().is_none_or(|only| only.iter().any(|o| o == name));
    if options.postgres.is_none() {
        report.note("No PostgreSQL server was given (--postgres or TEST_POSTGRES_URL): SQLite only.");
    }
    let engines = |name: &str| -> anyhow::Result<Vec<Engine>> {
        let mut engines = if options.postgres_only { vec![] } else { vec![Engine::Sqlite] };
        if let Some(server) = &options.postgres {
            engines.push(Engine::Postgres(fresh_database(server, name)?));
        }
        Ok(engines)
    };
    if wanted("idle") {
        println!("== start-up and idle");
        idle::run(options, report).await?;
        report.write()?;
    }
    if wanted("answers") {
        for engine in engines("answers")? {
            println!("== answer checks on {}", engine.name());
            answers::run(options, report, &engine).await?;
            report.write()?;
        }
    }
    if wanted("routes") {
        for engine in engines("routes")? {
            println!("== routes other than argon2 on {}", engine.name());
            routes::run(options, report, &engine).await?;
            report.write()?;
        }
    }
    if let Some(server) = &options.postgres {
        if wanted("million") {
            println!("== {} people in PostgreSQL", options.people);
            million::run(options, report, &fresh_database(server, "million")?).await?;
            report.write()?;
        }
        if wanted("instances") {
            println!("== two instances on one PostgreSQL");
            instances::run(options, report, &fresh_database(server, "instances")?).await?;
            report.write()?;
        }
    }
    Ok(())
}

/// The machine, for the report's notes.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!(
        "Machine: {cores} cores ({cpu}), {memory_gb:.0} GiB; the load generator runs on the same cores as the backend."
    )
}

/// A new, empty database on the PostgreSQL server `server` (its URL names the `postgres` database).
pub fn fresh_database(server: &str, name: &str) -> anyhow::Result<String> {
    let database = format!("bench_{name}_{}", std::process::id());
    let status = Command::new("psql")
        .args([server, "-q", "-v", "ON_ERROR_STOP=1"])
        .args([
            "-c",
            &format!("DROP DATABASE IF EXISTS {database}"),
            "-c",
            &format!("CREATE DATABASE {database}"),
        ])
        .status()
        .context("Failed to run psql")?;
    if !status.success() {
        bail!("psql could not create {database}");
    }
    let (base, _) = server.rsplit_once('/').context("the PostgreSQL URL names no database")?;
    Ok(format!("{base}/{database}"))
}

/// How many preparing tasks start a second, at most. A task makes up to two requests, so the
/// preparation stays under the backend's global limit (`global_rate_limit_per_second`, 2,000 by
/// default) like a real client would: on a fast machine 5,000 challenges fetched as fast as 32
/// clients could were refused 429 (2026-12-04).
const PREPARING_RATE: f64 = 800.0;

/// `count` tasks, at most `concurrency` at once and `PREPARING_RATE` started a second; their
/// results in order.
pub async fn together<T, F, Fut>(count: usize, concurrency: usize, task: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut running = JoinSet::new();
    let start = tokio::time::Instant::now();
    for i in 0..count {
        tokio::time::sleep_until(start + std::time::Duration::from_secs_f64(i as f64 / PREPARING_RATE)).await;
        let permit = permits.clone().acquire_owned().await?;
        let work = task(i);
        running.spawn(async move {
            let result = work.await;
            drop(permit);
            (i, result)
        });
    }
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(done) = running.join_next().await {
        let (i, result) = done?;
        results[i] = Some(result?);
    }
    Ok(results.into_iter().flatten().collect())
}

/// Brings `people` in through `backend admin import-cards`; how long it took.
pub fn import(
    programs: &Programs,
    env: &[(String, String)],
    people: &[Person],
) -> anyhow::Result<std::time::Duration> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), import_csv(people.iter())?)?;
    let started = Instant::now();
    Backend::admin(programs, env, &["import-cards", &file.path().display().to_string()])?;
    Ok(started.elapsed())
}

/// Registers each of `people` for self-service through the API, 8 at a time.
pub async fn register_all(
    api: &Api,
    mailbox: &Arc<Mailbox>,
    people: &[Person],
) -> anyhow::Result<std::time::Duration> {
    let started = Instant::now();
    let people = Arc::new(people.to_vec());
    together(people.len(), 8, |i| {
        let (api, mailbox, people) = (api.clone(), mailbox.clone(), people.clone());
        async move {
            api.register(&people[i], &mailbox)
                .await
                .with_context(|| format!("registering {}", people[i].user_id))
        }
    })
    .await?;
    Ok(started.elapsed())
}

/// Raw argon2id verifications a second on every core, with the service's own parameters and
/// code (`backend measure-argon2`), measured now: the bound the answer checks are held to.
pub fn raw_argon2_rate(programs: &Programs, seconds: f64) -> anyhow::Result<f64> {
    let output = Command::new(&programs.backend)
        .args(["measure-argon2", "--seconds", &seconds.to_string()])
        .output()
        .context("Failed to run backend measure-argon2")?;
    if !output.status.success() {
        bail!("backend measure-argon2 failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8(output.stdout)?;
    text.split_whitespace()
        .next()
        .context("no rate printed")?
        .parse()
        .with_context(|| format!("rate in {text:?}"))
}
