//! `virtual-card`: create, personalise and run a software PIV card in pcscd's vpcd reader.

use std::{path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use der::EncodePem;
use piv::{
    host::{PinStatus, PivSession},
    ids::{alg, object},
    mgmt::{encode_hex, ManagementKey},
    pin::PaddedPin,
};
use virtual_card::{
    card::Card,
    personalise::{self, CertificateAuthority},
    quirks::{Profile, Quirks},
    state::{CardState, DEFAULT_PIN, DEFAULT_PUK},
    vpcd,
};

#[derive(Debug, Parser)]
#[command(version, about = "A software PIV card for pcscd's vpcd reader")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MgmtAlgorithm {
    #[value(name = "3des")]
    Tdes,
    Aes128,
    Aes192,
    Aes256,
}

impl MgmtAlgorithm {
    fn id(self) -> u8 {
        match self {
            MgmtAlgorithm::Tdes => alg::TDES,
            MgmtAlgorithm::Aes128 => alg::AES_128,
            MgmtAlgorithm::Aes192 => alg::AES_192,
            MgmtAlgorithm::Aes256 => alg::AES_256,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Make a new blank card: random serial, default PIN/PUK/management key, 3 tries each.
    Init {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value = DEFAULT_PIN)]
        pin: String,
        #[arg(long, default_value = DEFAULT_PUK)]
        puk: String,
        /// Management key in hex (default: the well-known 3DES key 0102…08 ×3).
        #[arg(long)]
        mgmt_key: Option<String>,
        #[arg(long, value_enum)]
        mgmt_algorithm: Option<MgmtAlgorithm>,
        /// Replace an existing card at this path.
        #[arg(long)]
        force: bool,
        /// Make the card as this kind of card comes from its maker (its factory management key
        /// algorithm unless --mgmt-algorithm says otherwise, CHUID and quirks; see below).
        #[arg(long, value_enum, default_value = "plain")]
        profile: Profile,
        #[command(flatten)]
        quirks: QuirkArgs,
        /// Give the card an attestation key (slot F9, as YubiKeys have) certified by the maker
        /// CA in this folder (`ca.key.pem`, `ca.cert.pem`, created on first use). Without it the
        /// card has no ATTEST, like many PIV cards.
        #[arg(long)]
        maker_ca: Option<PathBuf>,
    },
    /// Insert the card into vpcd's reader and answer APDUs until stopped (Ctrl-C = card removed).
    Run {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value = "127.0.0.1:35963")]
        vpcd: String,
        /// Exit when vpcd drops the connection instead of re-inserting the card.
        #[arg(long)]
        once: bool,
        /// Fault injection for tests: act as if the holder pulls the card out the moment it has
        /// carried out a command with this instruction byte (hex, e.g. 24), before it answers.
        #[arg(long, value_parser = parse_hex_byte, hide = true)]
        remove_on_ins: Option<u8>,
    },
    /// Generate 9A and 9E keys on the card, certify them with the demo CA, write them and a CHUID.
    Personalise {
        #[arg(long)]
        state: PathBuf,
        /// Folder of the demo CA (`ca.key.pem`, `ca.cert.pem`), created on first use.
        #[arg(long)]
        ca_dir: PathBuf,
        /// The cardholder's name for the certificates.
        #[arg(long, default_value = "Demo Cardholder")]
        name: String,
        #[arg(long)]
        mgmt_key: Option<String>,
        #[arg(long, value_enum, default_value = "3des")]
        mgmt_algorithm: MgmtAlgorithm,
        /// Also write the 9A certificate (PEM) here.
        #[arg(long)]
        cert_out: Option<PathBuf>,
    },
    /// Show what the card holds (serial, GUID, tries left, keys) — never secrets.
    Status {
        #[arg(long)]
        state: PathBuf,
    },
    /// Write what an issuer records about a personalised card into a folder: `guid` (32 hex
    /// digits), `piv-auth.pem` (9A) and `card-auth.pem` (9E), read through the card's own
    /// commands.
    Export {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
    },
}

/// Quirks one by one, on top of the profile's.
#[derive(Debug, clap::Args)]
struct QuirkArgs {
    /// Write a CHUID with a random GUID, as some makers' applets do when they first run.
    #[arg(long)]
    factory_chuid: bool,
    /// The only management-key algorithms the card takes (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    mgmt_algorithms: Vec<MgmtAlgorithm>,
    /// Answer a wrong PIN or PUK in a change or reset with a bare 6300 (no count).
    #[arg(long)]
    bare_6300: bool,
    /// Give the PUK this many tries once it has been changed.
    #[arg(long)]
    puk_tries_after_change: Option<u8>,
    /// Send response data only through GET RESPONSE (61xx first), as T=0 cards do.
    #[arg(long)]
    data_by_get_response: bool,
    /// Refuse a right-truncated AID in SELECT (6A82).
    #[arg(long)]
    full_aid_only: bool,
    /// Answer Yubico's GET METADATA.
    #[arg(long)]
    metadata: bool,
}

impl QuirkArgs {
    fn apply(&self, profile: Profile) -> Quirks {
        let mut quirks = profile.quirks();
        if !self.mgmt_algorithms.is_empty() {
            quirks.mgmt_algorithms = self.mgmt_algorithms.iter().map(|a| a.id()).collect();
        }
        quirks.bare_6300 |= self.bare_6300;
        quirks.puk_tries_after_change = self.puk_tries_after_change.or(quirks.puk_tries_after_change);
        quirks.data_by_get_response |= self.data_by_get_response;
        quirks.full_aid_only |= self.full_aid_only;
        quirks.metadata |= self.metadata;
        quirks
    }
}

fn management_key(algorithm: u8, hex: Option<&str>) -> anyhow::Result<ManagementKey> {
    Ok(match hex {
        Some(hex) => ManagementKey::from_hex(algorithm, hex)?,
        None => ManagementKey::factory(algorithm)?,
    })
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).init();
    match Cli::parse().command {
        Cmd::Init { state, pin, puk, mgmt_key, mgmt_algorithm, force, maker_ca, profile, quirks } => {
            if state.exists() && !force {
                bail!("{} already holds a card; pass --force to replace it", state.display());
            }
            PaddedPin::new(&pin).context("--pin")?;
            PaddedPin::new(&puk).context("--puk")?;
            let algorithm = mgmt_algorithm.map_or(profile.factory_algorithm(), MgmtAlgorithm::id);
            let key = management_key(algorithm, mgmt_key.as_deref())?;
            let mut card = CardState::blank(&pin, &puk, key.algorithm(), key.key_bytes());
            card.quirks = quirks.apply(profile);
            if !card.quirks.takes_mgmt_algorithm(algorithm) {
                bail!("the card would not take its own {} management key", key.algorithm_name());
            }
            if profile.factory_chuid() || quirks.factory_chuid {
                card.write_factory_chuid();
            }
            if let Some(dir) = &maker_ca {
                card.provision_attestation(&CertificateAuthority::load_or_create_maker(dir)?)?;
            }
            card.save(&state)?;
            println!("new blank card {} (serial {}, {})", state.display(), card.serial, profile.name());
            Ok(())
        }
        Cmd::Run { state, vpcd: address, once, remove_on_ins } => run(state, &address, once, remove_on_ins),
        Cmd::Personalise { state, ca_dir, name, mgmt_key, mgmt_algorithm, cert_out } => {
            let card = Card::new(CardState::load(&state)?, Some(state.clone()));
            let mut session = PivSession::new(card);
            let ca = CertificateAuthority::load_or_create(&ca_dir)?;
            let key = management_key(mgmt_algorithm.id(), mgmt_key.as_deref())?;
            let done = personalise::personalise(&mut session, &key, &ca, &name)?;
            if let Some(path) = cert_out {
                std::fs::write(path, done.piv_auth_certificate.to_pem(der::pem::LineEnding::LF)?)?;
            }
            println!("personalised {} for {name}: GUID {}", state.display(), encode_hex(&done.guid));
            Ok(())
        }
        Cmd::Export { state, out_dir } => {
            let mut session = PivSession::new(Card::new(CardState::load(&state)?, None));
            session.select()?;
            let guid = session
                .get_data(object::CHUID)?
                .and_then(|c| personalise::guid_from_chuid(&c))
                .context("the card is not personalised (no CHUID)")?;
            std::fs::create_dir_all(&out_dir)?;
            std::fs::write(out_dir.join("guid"), encode_hex(&guid))?;
            for (tag, file) in
                [(object::CERT_PIV_AUTH, "piv-auth.pem"), (object::CERT_CARD_AUTH, "card-auth.pem")]
            {
                let certificate = session
                    .get_data(tag)?
                    .and_then(|o| personalise::certificate_from_object(&o))
                    .with_context(|| format!("the card has no certificate for {file}"))?;
                std::fs::write(out_dir.join(file), certificate.to_pem(der::pem::LineEnding::LF)?)?;
            }
            println!("exported GUID {} and certificates to {}", encode_hex(&guid), out_dir.display());
            Ok(())
        }
        Cmd::Status { state } => {
            let card = CardState::load(&state)?;
            let mut session = PivSession::new(Card::new(card.clone(), None));
            session.select()?;
            let guid = session
                .get_data(object::CHUID)?
                .and_then(|c| personalise::guid_from_chuid(&c))
                .map(|g| encode_hex(&g))
                .unwrap_or_else(|| "none (not personalised)".into());
            let pin = match session.pin_status()? {
                PinStatus::Blocked => "blocked".to_owned(),
                PinStatus::TriesLeft(Some(n)) => format!("{n} tries left"),
                _ => "unknown".to_owned(),
            };
            println!("serial:   {}", card.serial);
            println!("GUID:     {guid}");
            println!("PIN:      {pin}");
            println!("PUK:      {} tries left", card.puk_tries_left);
            println!("keys:     {}", card.keys.keys().cloned().collect::<Vec<_>>().join(", "));
            Ok(())
        }
    }
}

fn parse_hex_byte(text: &str) -> Result<u8, String> {
    u8::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|e| format!("not a hex byte: {e}"))
}

fn run(state_path: PathBuf, address: &str, once: bool, remove_on_ins: Option<u8>) -> anyhow::Result<()> {
    let state = CardState::load(&state_path)?;
    let mut card = Card::new(state, Some(state_path.clone()));
    loop {
        let mut stream = vpcd::connect(address, Duration::from_secs(30)).with_context(|| {
            format!("Failed to reach vpcd at {address}: is pcscd running with vsmartcard-vpcd?")
        })?;
        tracing::info!(card = %state_path.display(), %address, "card inserted");
        let result = vpcd::serve(&mut stream, &mut card, remove_on_ins);
        tracing::info!("card removed");
        if once {
            return result.context("the connection to vpcd failed");
        }
        if let Err(error) = result {
            tracing::warn!(%error, "connection to vpcd lost; re-inserting");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
