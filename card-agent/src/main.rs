//! `card-agent`: the workstation service on ws://127.0.0.1:47101 — a tray icon in a desktop
//! session, a plain service otherwise.
// On Windows a program started at sign-in must not open a console window; `--version` and
// `--diagnostics` typed in one still print there (platform::attach_console).
#![cfg_attr(windows, windows_subsystem = "windows")]

use std::path::PathBuf;

use anyhow::Context;
use card_agent::{
    config::{self, AgentConfig, SettingsChange},
    pcsc_worker::Pcsc,
    platform,
    server::Server,
};
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
    /// `ORIGIN=KEY`: a public key the backend of that origin signs envelopes with (repeatable,
    /// two per origin at most; `backend admin envelope-key` prints it).
    #[arg(long = "envelope-key")]
    envelope_keys: Vec<String>,
    /// Print what IT support needs (version, settings, pcscd, readers, cards) and exit.
    #[arg(long)]
    diagnostics: bool,
    /// The self-service site, where "Unlock my card" leads (overrides `self_service_url`).
    #[arg(long)]
    self_service_url: Option<String>,
    /// The WebSocket service only, no desktop notifications: for servers and CI. Without a
    /// desktop session (no DISPLAY or WAYLAND_DISPLAY) the agent runs headless anyway.
    #[arg(long)]
    headless: bool,
    /// Change the settings file FILE with the flags given (empty values keep what it says),
    /// check the result and exit: what the Windows installer runs.
    #[arg(long, value_name = "FILE")]
    write_settings: Option<PathBuf>,
    /// Remove the settings file FILE (and its folder if left empty) and exit: the uninstaller's.
    #[arg(long, value_name = "FILE")]
    remove_settings: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::attach_console();
    let cli = Cli::parse();
    if let Some(path) = &cli.write_settings {
        let change = SettingsChange {
            port: cli.port,
            allowed_origins: cli.allow_origins,
            envelope_keys: cli.envelope_keys,
            self_service_url: cli.self_service_url,
        };
        let written = config::write_settings(path, &change)?;
        println!("settings written to {}: origins {:?}", path.display(), written.allowed_origins);
        return Ok(());
    }
    if let Some(path) = &cli.remove_settings {
        return config::remove_settings(path);
    }
    let desktop = !cli.headless && !cli.diagnostics && platform::has_desktop_session();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logging = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // Started from the desktop's autostart, stderr goes nowhere a person would look.
    match desktop.then(platform::desktop_log_file).flatten() {
        Some((path, file)) => {
            logging.with_ansi(false).with_writer(std::sync::Mutex::new(file)).init();
            eprintln!("card agent log: {}", path.display());
        }
        None => logging.with_writer(std::io::stderr).init(),
    }
    let file = cli.config.clone().or_else(platform::default_config_file);
    let mut config = match &file {
        Some(path) => AgentConfig::from_file(path)?,
        None => AgentConfig::default(),
    };
    if let Some(path) = &file {
        tracing::info!(config = %path.display(), "settings read");
    }
    if let Some(port) = cli.port {
        config.port = port;
    }
    config.allowed_origins.extend(cli.allow_origins);
    for flag in &cli.envelope_keys {
        config.add_envelope_key(flag)?;
    }
    config.validate()?;
    if cli.self_service_url.is_some() {
        config.self_service_url = cli.self_service_url;
    }
    if cli.diagnostics {
        let settings_file = file.as_ref().map(|p| p.display().to_string());
        let pcsc = Pcsc::start();
        // The monitor lists the readers within a moment of starting.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let findings = card_agent::diagnostics::gather(&pcsc, config, settings_file).await;
        print!("{}", card_agent::diagnostics::report(&findings));
        return Ok(());
    }
    if config.allowed_origins.is_empty() {
        tracing::warn!("no --allow-origin given: every web page will be refused");
    }
    let desktop_config = config.clone();
    let pcsc = Pcsc::start();
    let server = Server::bind(config, pcsc.clone()).await.context("Failed to listen on 127.0.0.1")?;
    println!("card agent listening on ws://{}", server.address()?);
    if desktop {
        if desktop_config.self_service_url.is_none() {
            tracing::warn!("no self_service_url configured: the tray cannot open the self-service pages");
        }
        tokio::spawn(card_agent::desktop::run(pcsc, desktop_config));
    } else {
        tracing::info!("headless: no tray, no desktop notifications");
    }
    tokio::select! {
        result = server.run() => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
