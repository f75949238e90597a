//! The backend binary: parses the command line, loads the settings and runs the server.

use std::path::PathBuf;

use anyhow::Context;
use backend::{config::Settings, startup::Application, telemetry};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about = "Smartcard self-service backend")]
struct Cli {
    /// A TOML settings file layered over the defaults (and under the environment).
    #[arg(long, env = "SELFSERVICE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and the SPA (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Print the effective settings (secrets redacted) and exit.
    Settings,
    /// Measure how many security-answer checks this machine can do: argon2id verifications a
    /// second on every core, with the service's parameters. Prints the rate and exits.
    MeasureArgon2 {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Operator commands: users, cards, audit check.
    #[command(subcommand)]
    Admin(backend::admin::AdminCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref()).context("Failed to load the settings")?;
    telemetry::init_as(&settings.log, settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await?;
            // Plain stdout, not a log line: this is what the person who ran the command looks for.
            println!("Smartcard self-service is running at {}  (Ctrl-C stops it)", app.url());
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let db = backend::db::Database::connect(&settings).await?;
            db.migrate().await?;
            println!("migrations applied ({})", db.kind());
            Ok(())
        }
        Command::Admin(command) => {
            let db = backend::db::Database::connect(&settings).await?;
            db.migrate().await?;
            let result = backend::admin::run(&db, &settings, command).await;
            db.close().await;
            result
        }
        Command::MeasureArgon2 { seconds } => {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let duration = std::time::Duration::try_from_secs_f64(seconds)
                .context("--seconds must be a positive number")?;
            let rate = backend::hashing::verifications_per_second(threads, duration)?;
            println!("{rate:.1} verifications/s on {threads} threads ({})", backend::hashing::parameters());
            Ok(())
        }
        Command::Settings => {
            println!("{}", settings.redacted_toml()?);
            Ok(())
        }
    }
}
