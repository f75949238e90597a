//! `backend admin …`: operator commands run next to the database (bootstrap, support).
//! Each is audited with the actor `system`.

use std::path::PathBuf;

use agent_client::AgentClient;
use anyhow::Context;
use clap::Subcommand;

use zeroize::Zeroizing;

use crate::{
    admin_issue::{self, IssueCard},
    audit::{self, Entry, SYSTEM},
    card_proof::public_key_of_certificate,
    config::Settings,
    db::Database,
    store::people::{self, NewUser, PeopleError},
    vault::Vault,
};

/// The card agent on this computer, for the commands that drive a card through it.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    #[arg(long, default_value = "ws://127.0.0.1:47101")]
    agent_url: String,
    /// An origin the agent allows; default: the service's public URL.
    #[arg(long)]
    origin: Option<String>,
    /// The reader with the card; default: the first reader holding a card.
    #[arg(long)]
    reader: Option<String>,
}

/// How long a card just put in (or a virtual card just started) may take to reach pcscd.
const CARD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The agent's address, an origin it allows and the reader: what `issue-card` and `unlock-card`
/// connect with.
#[derive(Debug, Clone, Copy)]
pub struct CardAgent<'a> {
    pub url: &'a str,
    pub origin: &'a str,
    pub reader: Option<&'a str>,
}

impl CardAgent<'_> {
    /// Connects (refusing an agent of another protocol version) and waits for a card in the
    /// reader; the reader's name.
    pub async fn connect(&self) -> anyhow::Result<(AgentClient, String)> {
        let mut agent = AgentClient::connect_compatible(self.url, self.origin).await?;
        let reader = agent.wait_for_card(self.reader, CARD_WAIT).await?;
        Ok((agent, reader))
    }
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user (succeeds without change if the same user already exists).
    AddUser {
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        name: String,
        /// Contact email from their details.
        #[arg(long)]
        email: Option<String>,
        /// A role, e.g. `ra` (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Record a personalised card as issued to a user, from its GUID and its 9A and 9E
    /// certificates (PEM or DER), e.g. the output of `virtual-card export`.
    BindCard {
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        guid: String,
        #[arg(long)]
        piv_auth_cert: PathBuf,
        #[arg(long)]
        card_auth_cert: PathBuf,
        /// Read the card's current PUK from the first line of standard input (never from the
        /// command line, where other users could see it) and record it sealed, unless one is
        /// recorded already.
        #[arg(long)]
        puk_stdin: bool,
    },
    /// Issue the blank card in a reader to a user through the card agent on this computer — the
    /// RA console's issuance, for the first RA's card or the demo. The holder's new passcode is
    /// read from the first line of standard input (never from the command line).
    IssueCard {
        #[arg(long)]
        user_id: String,
        #[arg(long, default_value = "Issued by the operator")]
        reason: String,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Unlock a user's card at the operator's desk through the card agent on this computer — the
    /// RA console's "Unlock their card": resets the passcode and rotates the PUK, clears the
    /// self-service lockout, emails the holder. The new passcode is read from the first line of
    /// standard input (never from the command line).
    UnlockCard {
        #[arg(long)]
        user_id: String,
        /// How the holder's identity was checked, for the audit trail.
        #[arg(long)]
        identity_check: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Check the audit trail's hash chain; exits non-zero naming the first broken row.
    VerifyAudit,
    /// Seal the audit trail's head as it stands, once, after upgrading from a release before the
    /// keyed trail (whose head was never sealed): start-up seals only a new, empty trail, since
    /// nothing in the database can be trusted to say the rest is genuine.
    SealAudit,
    /// Import cards already issued, with their holders, from a CSV file (README, "Importing
    /// cards"): every row is checked before any is written; a rerun changes nothing.
    ImportCards { file: PathBuf },
    /// Write a consistent copy of the embedded SQLite database to FILE while the service runs
    /// (PostgreSQL: use `pg_dump`). FILE must not exist.
    Backup { file: PathBuf },
    /// Seal every stored secret (PUKs, management keys, queued mail) again under the KEK in FILE
    /// (32 bytes, base64). Safe to stop and run again. Put FILE's key in `puk_kek_others` on every
    /// instance first (README, "Rotating the key-encryption key").
    RotateKek {
        #[arg(long)]
        new_kek_file: PathBuf,
        /// Fault injection for tests: abort after re-sealing this many values.
        #[arg(long, hide = true)]
        stop_after: Option<u64>,
    },
    /// Print the public key this backend signs envelopes with (base64), for every card agent's
    /// settings: `envelope_keys` for this site's origin, or `--envelope-key ORIGIN=KEY`.
    EnvelopeKey,
}

pub async fn run(db: &Database, settings: &Settings, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::AddUser { user_id, name, email, roles } => {
            let new =
                NewUser { user_id: &user_id, name: &name, contact_email: email.as_deref(), roles: &roles };
            match people::add_user(db, &new).await {
                Ok(user) => {
                    audit::record(
                        db,
                        Entry::new(SYSTEM, "user_added")
                            .subject(&user.user_id)
                            .details(serde_json::json!({ "roles": roles })),
                    )
                    .await?;
                    println!("added user {} ({})", user.user_id, user.name);
                }
                Err(PeopleError::UserExists(_)) => {
                    let existing = people::user_by_user_id(db, &user_id).await?.context("user vanished")?;
                    anyhow::ensure!(
                        existing.name == name && existing.contact_email == email && existing.roles == roles,
                        "a different user with id {user_id} already exists"
                    );
                    println!("user {user_id} already exists");
                }
                Err(e) => return Err(e.into()),
            }
        }
        AdminCommand::BindCard { user_id, guid, piv_auth_cert, card_auth_cert, puk_stdin } => {
            anyhow::ensure!(
                guid.len() == 32 && guid.bytes().all(|b| b.is_ascii_hexdigit()),
                "--guid must be 32 hex digits"
            );
            let key = |path: &PathBuf| -> anyhow::Result<Vec<u8>> {
                let bytes =
                    std::fs::read(path).with_context(|| format!("Failed to read {}", path.display()))?;
                public_key_of_certificate(&bytes)
                    .with_context(|| format!("{} is not a certificate", path.display()))
            };
            let user =
                people::user_by_user_id(db, &user_id).await?.with_context(|| format!("no user {user_id}"))?;
            let card =
                people::bind_card(db, &user, &guid, &key(&piv_auth_cert)?, &key(&card_auth_cert)?).await?;
            audit::record(
                db,
                Entry::new(SYSTEM, "card_bound")
                    .subject(&card.guid)
                    .details(serde_json::json!({ "user_id": user.user_id })),
            )
            .await?;
            println!("card {} is issued to {}", card.guid, user.user_id);
            if puk_stdin {
                let mut line = Zeroizing::new(String::new());
                std::io::stdin()
                    .read_line(&mut line)
                    .context("Failed to read the PUK from standard input")?;
                let puk = line.trim_end_matches(['\r', '\n']);
                anyhow::ensure!(
                    (6..=8).contains(&puk.len()) && puk.bytes().all(|b| b.is_ascii_graphic()),
                    "a PUK is 6 to 8 printable characters"
                );
                let sealed = Vault::from_settings(settings)?.seal(&card.guid, puk)?;
                if people::record_initial_puk(db, &card.guid, &sealed).await? {
                    audit::record(db, Entry::new(SYSTEM, "puk_recorded").subject(&card.guid)).await?;
                    println!("its PUK is recorded, sealed");
                } else {
                    println!("its PUK was already recorded; left as it is");
                }
            }
        }
        AdminCommand::IssueCard { user_id, reason, agent } => {
            let pin = passcode_from_stdin()?;
            let origin = agent.origin.clone().unwrap_or_else(|| settings.public_url());
            let vault = Vault::from_settings(settings)?;
            let ca = card_ca::CertificateAuthority::load_or_create(&settings.ca_dir())?;
            let signer = crate::trust::envelope_signer(settings)?;
            let attestation_roots = crate::trust::attestation_roots(settings)?;
            let issuer = crate::journeys::issuance::Issuer {
                db,
                vault: &vault,
                ca: &ca,
                signer: &signer,
                attestation_roots: &attestation_roots,
            };
            let command = IssueCard {
                user_id: &user_id,
                reason: &reason,
                agent: CardAgent { url: &agent.agent_url, origin: &origin, reader: agent.reader.as_deref() },
                pin,
            };
            let issued = admin_issue::issue_card(issuer, command).await?;
            println!("card {} is issued to {}", issued.guid, issued.user_id);
        }
        AdminCommand::UnlockCard { user_id, identity_check, reason, agent } => {
            let pin = passcode_from_stdin()?;
            let origin = agent.origin.clone().unwrap_or_else(|| settings.public_url());
            let state = crate::startup::AppState::new(db.clone(), settings.clone())?;
            let command = crate::admin_unlock::UnlockCard {
                user_id: &user_id,
                identity_check: &identity_check,
                reason: &reason,
                agent: CardAgent { url: &agent.agent_url, origin: &origin, reader: agent.reader.as_deref() },
                pin,
            };
            crate::admin_unlock::unlock_card(&state, command).await?;
            println!("the card of {user_id} is unlocked with the new passcode");
        }
        AdminCommand::ImportCards { file } => {
            let csv = std::fs::read(&file).with_context(|| format!("Failed to read {}", file.display()))?;
            let vault = Vault::from_settings(settings)?;
            let started = std::time::Instant::now();
            let done = crate::card_import::import(db, &vault, &settings.email_domains, &csv).await?;
            println!(
                "{} rows: {} people and {} cards added, {} PUKs recorded ({:.1} s)",
                done.rows,
                done.people_added,
                done.cards_added,
                done.puks_recorded,
                started.elapsed().as_secs_f64()
            );
        }
        AdminCommand::Backup { file } => {
            crate::backup::backup(db, &file).await?;
            audit::record(db, Entry::new(SYSTEM, "database_backed_up")).await?;
            println!("backup written to {}", file.display());
        }
        AdminCommand::RotateKek { new_kek_file, stop_after } => {
            let new_kek = crate::kek_rotation::read_kek_file(&new_kek_file)?;
            let rotated = crate::kek_rotation::rotate(db, settings, &new_kek, stop_after).await?;
            println!(
                "{} secrets sealed again under the new key ({} were already)",
                rotated.resealed, rotated.already
            );
            if settings.puk_kek.is_some() {
                println!(
                    "Now set puk_kek to the key in {} and move the old one to puk_kek_others on every \
                     instance, restart them, and run this command once more.",
                    new_kek_file.display()
                );
            } else {
                println!("The new key is now {}/puk.kek; restart the service.", settings.data_dir.display());
            }
        }
        AdminCommand::EnvelopeKey => println!("{}", crate::trust::envelope_signer(settings)?.trusted_key()),
        AdminCommand::SealAudit => match audit::seal_as_it_stands(db).await? {
            true => println!("audit trail sealed as it stands"),
            false => println!("the audit trail's head was sealed already: nothing changed"),
        },
        AdminCommand::VerifyAudit => match audit::first_broken_row(db).await? {
            None => println!("audit trail intact"),
            Some(id) => anyhow::bail!("the audit trail is broken at row {id}: it was altered or removed"),
        },
    }
    Ok(())
}

/// The holder's new passcode, from the first line of standard input, checked with the same
/// rules as the pages' before any card is touched.
fn passcode_from_stdin() -> anyhow::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().read_line(&mut line).context("Failed to read the passcode from standard input")?;
    let pin = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    protocol::passcode::check(&pin, &pin).map_err(|problem| anyhow::anyhow!(problem.message()))?;
    Ok(pin)
}
