//! The load harness (issue 16, DESIGN.md's numbers): real `backend serve` processes on SQLite and
//! PostgreSQL, driven over HTTP by software PIV identities at fixed arrival rates, each scenario
//! measured beside its limit in the same run. `scripts/bench.sh` builds the release programs,
//! starts PostgreSQL and runs it; `--quick` (seconds, a few people) is what the test command runs
//! so the harness keeps working. Nothing here asserts a timing: the report says.
//!
//! `bench [--quick] [--only NAME,..] [--postgres URL] [--postgres-only] [--people N] [--out FILE]
//!        [--backend PATH] [--agent PATH] [--dist DIR]`
//!
//! `--postgres-only` skips SQLite in the scenarios that run on both (answers, routes): to
//! compare two builds on PostgreSQL, run by run, without the SQLite half between them.

mod api;
mod disk;
mod load;
mod mailbox;
mod people;
mod process;
mod report;
mod scenarios;

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::{process::Programs, report::Report};

/// What a run was asked to do.
#[derive(Debug)]
pub struct Options {
    pub quick: bool,
    pub only: Option<Vec<String>>,
    /// A PostgreSQL server URL the bench may create databases on (as its superuser).
    pub postgres: Option<String>,
    /// Leave SQLite out of the scenarios that run on both engines.
    pub postgres_only: bool,
    /// People in the "million people" scenario.
    pub people: usize,
    pub out: PathBuf,
    pub programs: Programs,
}

fn options() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let (mut quick, mut postgres_only) = (false, false);
    let (mut only, mut postgres, mut people, mut out) = (None, None, None, None);
    let (mut backend, mut agent, mut dist) = (None, None, root.join("dist"));
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--postgres" => postgres = Some(value()?),
            "--postgres-only" => postgres_only = true,
            "--people" => people = Some(value()?.parse()?),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--backend" => backend = Some(PathBuf::from(value()?)),
            "--agent" => agent = Some(PathBuf::from(value()?)),
            "--dist" => dist = PathBuf::from(value()?),
            other => bail!("unknown argument {other} (see the top of bench/src/main.rs)"),
        }
    }
    let postgres = postgres.or_else(|| std::env::var("TEST_POSTGRES_URL").ok());
    if postgres_only && postgres.is_none() {
        bail!("--postgres-only needs a PostgreSQL server (--postgres or TEST_POSTGRES_URL)");
    }
    // Next to this program by default: the build that made it made them.
    let here = std::env::current_exe()?.parent().context("no folder")?.to_path_buf();
    Ok(Options {
        quick,
        only,
        postgres,
        postgres_only,
        people: people.unwrap_or(if quick { 2_000 } else { 1_000_000 }),
        out: out.unwrap_or_else(|| root.join("target/bench/report.md")),
        programs: Programs {
            backend: backend.unwrap_or_else(|| here.join("backend")),
            agent: agent.unwrap_or_else(|| here.join("card-agent")),
            dist,
        },
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    for program in [&options.programs.backend, &options.programs.agent] {
        if !program.exists() {
            bail!("{} is not built (scripts/bench.sh builds it)", program.display());
        }
    }
    let title = if options.quick {
        "Benchmarks (quick mode: the harness works, the numbers mean nothing)"
    } else {
        "Benchmarks"
    };
    let mut report = Report::new(options.out.clone(), title.to_owned());
    report.note(scenarios::machine());
    scenarios::run(&options, &mut report).await?;
    report.write()?;
    println!("report: {}", options.out.display());
    let failures = report.failures();
    if options.quick && !failures.is_empty() {
        bail!("the harness saw failures:\n{}", failures.join("\n"));
    }
    Ok(())
}
