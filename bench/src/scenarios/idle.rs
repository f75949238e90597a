//! Scenario 5: time to ready and idle memory of the backend and the card agent, and the
//! backend's memory during and after a burst (64 clients saturating `POST /api/unlock/challenge`
//! and the SPA's index page, as the issue found it).

use std::{
    io::BufRead,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;

use crate::{
    api::{Api, Who},
    load::closed_loop,
    process::{rss_mb, Backend, Engine, Probe, Running},
    report::{Report, Row},
    Options,
};

const SCENARIO: &str = "5 start-up and idle";

pub async fn run(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let (settle, burst) = if options.quick {
        (Duration::from_secs(1), Duration::from_secs(2))
    } else {
        (Duration::from_secs(5), Duration::from_secs(20))
    };
    let data = tempfile::tempdir()?;
    let env = Backend::environment(&options.programs, &Engine::Sqlite, data.path());

    // The first start makes the data folder's keys and the database.
    let first = Backend::start(&options.programs, env.clone()).await?;
    let first_ready = first.time_to_ready;
    drop(first);
    let backend = Backend::start(&options.programs, env.clone()).await?;
    tokio::time::sleep(settle).await;
    let idle = backend.rss_mb()?;
    report.row(Row {
        scenario: SCENARIO.into(),
        engine: "SQLite".into(),
        load: "backend start, then idle".into(),
        rss_mb: Some(idle),
        limit: "ready, idle RSS".into(),
        measured: format!(
            "ready in {:.2} s (first start, fresh data folder: {:.2} s)",
            backend.time_to_ready.as_secs_f64(),
            first_ready.as_secs_f64()
        ),
        ..Row::default()
    });

    // The burst: each request from a client address of its own, so the per-client limit does not
    // turn it into cheap 429s.
    let api = Arc::new(Api::new(&backend.url)?);
    let probe = Probe::start(backend.pid());
    let outcome = closed_loop(64, burst, {
        let api = api.clone();
        move |i| {
            let api = api.clone();
            async move {
                let address = format!("10.9.{}.{}", (i >> 8) & 255, i & 255);
                let who = Who { address: &address, cookie: None };
                if i % 2 == 0 {
                    api.post_status("/api/unlock/challenge", who, &()).await
                } else {
                    api.get_status("/", who).await
                }
            }
        }
    })
    .await;
    let usage = probe.finish().await;
    tokio::time::sleep(burst).await;
    let after = backend.rss_mb()?;
    let mut row = Row::from_outcome(
        SCENARIO,
        "SQLite",
        format!("64 clients for {} s: unlock challenge + index", burst.as_secs()),
        &outcome,
        |s| s == 200,
    );
    row = row.used(usage);
    row.limit = "RSS back near idle".into();
    row.measured = format!("{after:.0} MB {} s after (idle {idle:.0} MB)", burst.as_secs());
    row.ratio = format!("{:.2}", after / idle);
    report.row(row);
    report.note(format!(
        "The burst: {:.0} requests/s served ({}).",
        outcome.throughput(|s| s == 200),
        outcome.status_summary()
    ));
    drop(backend);

    // The card agent: spawned, listening (its one line on standard output), then idle.
    let key = Backend::admin(&options.programs, &env, &["envelope-key"])?.trim().to_owned();
    let origin = "http://127.0.0.1:9";
    let config = tempfile::tempdir()?;
    let mut command = Command::new(&options.programs.agent);
    command
        .args([
            "--headless",
            "--port",
            "0",
            "--allow-origin",
            origin,
            "--envelope-key",
            &format!("{origin}={key}"),
        ])
        .env("XDG_CONFIG_HOME", config.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut agent = Running::spawn("card-agent", &mut command)?;
    let stdout = agent.child().stdout.take().context("no stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let ready = started.elapsed();
    anyhow::ensure!(line.contains("listening"), "the agent said {line:?}");
    tokio::time::sleep(settle).await;
    report.row(Row {
        scenario: SCENARIO.into(),
        engine: "—".into(),
        load: "card agent start, then idle".into(),
        rss_mb: Some(rss_mb(agent.pid())?),
        limit: "ready, idle RSS".into(),
        measured: format!("listening in {:.3} s", ready.as_secs_f64()),
        ..Row::default()
    });
    Ok(())
}
