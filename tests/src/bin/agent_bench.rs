//! Card agent benchmark on the real stack (pcscd + vpcd + the virtual card), seen from a page:
//! - card inserted → `card_inserted` event, and card removed → `card_removed` event;
//! - the whole unlock: offer (9E signature checked as the backend would), envelope sealed,
//!   RESET RETRY COUNTER, PUK rotation, VERIFY with the new PIN and the 9A proof.
//!
//! Build release binaries first, then run alone (it uses the test reader):
//! `cargo build --release --workspace --bins && target/release/agent-bench [rounds]`

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use protocol::agent::{Event, Outcome, PukOnCard, Reply};
use tests::{
    agent::{seal_for, verifying_key, AgentClient, RunningAgent},
    process::ChildGuard,
    smartcard::{ensure_pcscd, workspace_binary, CardFile, InsertedCard, READER, VPCD_PORT},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(20);
    ensure_pcscd()?;
    let card = CardFile::personalised("Bench Holder")?;
    // The benchmark asks faster than any page would: lift the flood limit for it.
    let config = card.dir.path().join("agent.toml");
    std::fs::write(&config, "max_requests_per_second = 10000\n")?;
    let agent = RunningAgent::start_with(&["--config".as_ref(), config.as_os_str()]).await?;
    let (mut client, _) = AgentClient::connect(&agent).await?;

    let (mut inserted, mut removed) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        client.events.clear();
        let start = Instant::now();
        let process = spawn_card(&card)?;
        client
            .wait_for_event(&Event::CardInserted { reader: READER.into() }, Duration::from_secs(10))
            .await?;
        inserted.push(start.elapsed());
        client.events.clear();
        let start = Instant::now();
        drop(process);
        client.wait_for_event(&Event::CardRemoved { reader: READER.into() }, Duration::from_secs(10)).await?;
        removed.push(start.elapsed());
    }

    let _card_in_reader = InsertedCard::insert(&card)?;
    client.wait_for_card().await?;
    let certificate = client.identity().await?.card_auth_certificate.context("no 9E certificate")?;
    let card_auth = verifying_key(&certificate)?;
    let mut puk = "12345678".to_owned();
    let mut unlocks = Vec::new();
    for round in 0..rounds {
        client.block_pin().await?;
        let new_puk = format!("{:08}", 31_000_000 + round);
        let start = Instant::now();
        let (guid, public_key) = client.begin_unlock(&card_auth).await?;
        let envelope = seal_for(&public_key, &guid, &[&puk], &new_puk, [round as u8; 32])?;
        let outcome = client.unlock(envelope, "97531864").await?;
        unlocks.push(start.elapsed());
        match outcome {
            Outcome::Ok(Reply::Unlocked(report))
                if report.puk == PukOnCard::Rotated && report.proof.is_some() => {}
            other => bail!("round {round}: the unlock did not complete: {other:?}"),
        }
        puk = new_puk;
    }

    println!("card agent benchmark, {rounds} rounds (virtual card over pcscd + vpcd)");
    report("card inserted → card_inserted event", &mut inserted);
    report("card removed → card_removed event", &mut removed);
    report("full unlock (offer + envelope + reset + PUK rotation + proof)", &mut unlocks);
    Ok(())
}

/// Puts the card in the reader without waiting, so the wait is what gets measured.
fn spawn_card(card: &CardFile) -> anyhow::Result<ChildGuard> {
    let mut command = Command::new(workspace_binary("virtual-card")?);
    command.arg("run").arg("--state").arg(&card.state).arg("--vpcd").arg(format!("127.0.0.1:{VPCD_PORT}"));
    command.arg("--once");
    ChildGuard::spawn("virtual-card", &mut command)
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!("{what}: median {:.1} ms, p90 {:.1} ms, max {:.1} ms", at(0.5), at(0.9), at(1.0));
}
