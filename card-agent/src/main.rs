//! `card-agent`: the workstation service (headless form) on ws://127.0.0.1:47101.

use std::path::PathBuf;

use anyhow::Context;
use card_agent::{config::AgentConfig, pcsc_worker::Pcsc, server::Server};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(version, about = "Smartcard self-service card agent (PC/SC behind a localhost WebSocket)")]
struct Cli {
    /// TOML configuration (`port`, `allowed_origins`, …); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Port on 127.0.0.1 (default 47101).
    #[arg(long)]
    port: Option<u16>,
    /// A web origin allowed to connect, e.g. https://selfservice.example.nhs.uk (repeatable).
    #[arg(long = "allow-origin")]
    allow_origins: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let mut config = match &cli.config {
        Some(path) => AgentConfig::from_file(path)?,
        None => AgentConfig::default(),
    };
    if let Some(port) = cli.port {
        config.port = port;
    }
    config.allowed_origins.extend(cli.allow_origins);
    if config.allowed_origins.is_empty() {
        tracing::warn!("no --allow-origin given: every web page will be refused");
    }
    let server = Server::bind(config, Pcsc::start()).await.context("Failed to listen on 127.0.0.1")?;
    println!("card agent listening on ws://{}", server.address()?);
    tokio::select! {
        result = server.run() => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
