//! The card agent as a process, and a WebSocket client that speaks its protocol.

use std::{
    process::{Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use base64::{engine::general_purpose::STANDARD, Engine};
use der::{Decode, Encode};
use envelope::UnlockSecrets;
use p256::{
    ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey},
    pkcs8::DecodePublicKey,
};
use protocol::agent::{AgentMessage, CardIdentity, Operation, Outcome, PinPurpose, PinState, Reply};

use zeroize::Zeroizing;

use crate::{
    process::ChildGuard,
    smartcard::{workspace_binary, READER},
};

/// The variable the agent's crash points read (its `crash-points` feature).
pub const AGENT_CRASH_AT: &str = "CARD_AGENT_CRASH_AT";

/// The origin the test agent allows.
pub const ALLOWED_ORIGIN: &str = "http://app.selfservice.test";

/// The envelope-signing key of every backend the tests start (a [`crate::system::RunningBackend`]
/// keeps it in its data folder), and of the tests that play the backend's part; the test agent
/// trusts it for [`ALLOWED_ORIGIN`] and for each site's origin.
const BACKEND_SEED: [u8; 32] = [0x42; 32];

pub fn backend_signer() -> envelope::EnvelopeSigner {
    envelope::EnvelopeSigner::from_seed(&BACKEND_SEED)
}

/// The seed as the backend keeps it in `<data_dir>/envelope-signing.key`.
pub fn backend_seed_base64() -> String {
    STANDARD.encode(BACKEND_SEED)
}

/// `--envelope-key` for `origin`: the tests' backend key.
pub fn envelope_key_flag(origin: &str) -> String {
    format!("{origin}={}", backend_signer().trusted_key())
}

#[derive(Debug)]
pub struct RunningAgent {
    pub port: u16,
    _process: ChildGuard,
}

impl RunningAgent {
    /// Starts the agent on a port the OS picks (no race with other tests for a "free" port)
    /// and reads the port from its first line of output.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// Starts the agent with extra command-line arguments (e.g. `--config`).
    pub async fn start_with(extra: &[&std::ffi::OsStr]) -> anyhow::Result<Self> {
        Self::start_program(&workspace_binary("card-agent")?, extra).await
    }

    /// As [`RunningAgent::start_with`], running the given `card-agent` program (e.g. the one a
    /// package installed).
    pub async fn start_program(
        program: &std::path::Path,
        extra: &[&std::ffi::OsStr],
    ) -> anyhow::Result<Self> {
        Self::start_command(Self::command(program, extra)).await
    }

    /// The test agent, killing itself (`SIGKILL`) when it reaches the crash point `point`.
    pub async fn start_crashing_at(point: &str) -> anyhow::Result<Self> {
        let mut command = Self::command(&workspace_binary("card-agent")?, &[]);
        command.env(AGENT_CRASH_AT, point);
        Self::start_command(command).await
    }

    /// The test agent with its clock `offset` off the real one (`faketime`, e.g. `"+3h"`), its
    /// log written to `log`. The monotonic clock is left alone, as a wrong wall clock leaves it.
    pub async fn start_with_clock_offset(offset: &str, log: &std::path::Path) -> anyhow::Result<Self> {
        let agent = Self::command(&workspace_binary("card-agent")?, &[]);
        let mut command = Command::new("faketime");
        command
            .args(["-f", offset])
            .arg(agent.get_program())
            .args(agent.get_args())
            .envs(agent.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .stderr(std::fs::File::create(log)?);
        Self::start_command(command).await
    }

    fn command(program: &std::path::Path, extra: &[&std::ffi::OsStr]) -> Command {
        let mut command = Command::new(program);
        command
            .args(["--headless", "--port", "0", "--allow-origin", ALLOWED_ORIGIN])
            .args(["--envelope-key", &envelope_key_flag(ALLOWED_ORIGIN)])
            .args(extra)
            // A person's own agent.toml must not leak into the tests.
            .env("XDG_CONFIG_HOME", std::env::temp_dir().join("card-agent-tests-no-config"))
            .env_remove(AGENT_CRASH_AT);
        command
    }

    /// Waits for the agent to die at its crash point (`SIGKILL`).
    pub async fn crashed(&mut self) -> anyhow::Result<()> {
        use std::os::unix::process::ExitStatusExt;
        let status = self._process.wait_exit(Duration::from_secs(30)).await?;
        anyhow::ensure!(status.signal() == Some(9), "the agent ended with {status}, not at its crash point");
        Ok(())
    }

    /// Runs `command` (an agent told `--port 0`, e.g. the Windows one under Wine) and waits for
    /// it to say where it listens.
    pub async fn start_command(mut command: Command) -> anyhow::Result<Self> {
        command.stdout(Stdio::piped());
        let mut process = ChildGuard::spawn("card-agent", &mut command)?;
        let stdout = process.take_stdout().context("no stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
        });
        let line = tokio::time::timeout(Duration::from_secs(20), line)
            .await
            .context("the agent did not start")???;
        let port = line
            .trim()
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .with_context(|| format!("unexpected agent output {line:?}"))?;
        process.check_alive()?;
        Ok(Self { port, _process: process })
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

/// The agent's client as the tests use it: connected as [`ALLOWED_ORIGIN`] (or another allowed
/// origin) to a [`RunningAgent`], with conveniences on the test reader.
#[derive(Debug)]
pub struct AgentClient(agent_client::AgentClient);

pub use agent_client::handshake;

/// The handshake guard of the agent at `agent`: a foreign origin and a DNS-rebinding Host are
/// refused with 403, the allowed origin gets in.
pub async fn assert_guarded(agent: &RunningAgent) {
    let forbidden = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status() == 403,
        _ => false,
    };
    assert!(forbidden(handshake(&agent.url(), "https://evil.example", None).await), "foreign origin");
    let rebinding_host = format!("evil.example:{}", agent.port);
    assert!(
        forbidden(handshake(&agent.url(), ALLOWED_ORIGIN, Some(&rebinding_host)).await),
        "rebinding host"
    );
    assert!(handshake(&agent.url(), ALLOWED_ORIGIN, None).await.is_ok(), "the allowed origin still gets in");
}

impl std::ops::Deref for AgentClient {
    type Target = agent_client::AgentClient;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for AgentClient {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl AgentClient {
    /// Connects as the allowed origin and reads the hello.
    pub async fn connect(agent: &RunningAgent) -> anyhow::Result<(Self, AgentMessage)> {
        let (client, hello) = agent_client::AgentClient::connect(&agent.url(), ALLOWED_ORIGIN).await?;
        Ok((Self(client), hello))
    }

    /// Connects as another origin the agent allows, past the hello.
    pub async fn connect_as(agent: &RunningAgent, origin: &str) -> anyhow::Result<Self> {
        Ok(Self(agent_client::AgentClient::connect(&agent.url(), origin).await?.0))
    }
}

/// The public key in a DER certificate (base64), as the backend would read it.
pub fn verifying_key(certificate_b64: &str) -> anyhow::Result<VerifyingKey> {
    let der = STANDARD.decode(certificate_b64)?;
    let certificate = x509_cert::Certificate::from_der(&der)?;
    let spki = certificate.tbs_certificate.subject_public_key_info.to_der()?;
    Ok(VerifyingKey::from_public_key_der(&spki)?)
}

/// Seals PUKs to an offered one-time key, as the backend does, valid for five minutes, with the
/// challenge the card's proof is to sign.
pub fn seal_for(
    public_key: &str,
    guid: &str,
    current: &[&str],
    new: &str,
    proof_challenge: [u8; 32],
) -> anyhow::Result<String> {
    let expires_at = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 300;
    let secrets = UnlockSecrets {
        guid: guid.into(),
        expires_at,
        issued_at: 0,
        current_puks: current.iter().map(|p| Zeroizing::new((*p).to_owned())).collect(),
        new_puk: Zeroizing::new(new.into()),
        proof_challenge: STANDARD.encode(proof_challenge),
    };
    Ok(envelope::seal(&backend_signer(), public_key, &secrets)?)
}

/// Card-level conveniences on the test reader, shared by the tests and the benchmark.
impl AgentClient {
    /// Waits until the agent lists a card in [`READER`].
    pub async fn wait_for_card(&mut self) -> anyhow::Result<()> {
        self.0.wait_for_card(Some(READER), Duration::from_secs(10)).await.map(drop)
    }

    pub async fn identity(&mut self) -> anyhow::Result<CardIdentity> {
        self.0.identity(READER).await
    }

    /// Three wrong PINs.
    pub async fn block_pin(&mut self) -> anyhow::Result<()> {
        let guid = self.identity().await?.guid;
        for _ in 0..3 {
            let wrong = Operation::SignWithPin {
                reader: READER.into(),
                guid: guid.clone(),
                pin: "000000".into(),
                challenge: STANDARD.encode([0; 32]),
                purpose: PinPurpose::SignIn,
            };
            if let Outcome::Ok(reply) = self.request(wrong).await? {
                bail!("a wrong PIN was accepted: {reply:?}");
            }
        }
        match self.identity().await?.pin {
            PinState::Blocked => Ok(()),
            other => bail!("the PIN is not blocked: {other:?}"),
        }
    }

    /// Plays the backend's part of the offer: checks that the card's 9E key signed the binding
    /// of the agent's one-time key to this card and challenge. Returns (GUID, public key).
    pub async fn begin_unlock(&mut self, card_auth: &VerifyingKey) -> anyhow::Result<(String, String)> {
        let challenge = [0x17u8; 32];
        let begin = Operation::BeginUnlock { reader: READER.into(), challenge: STANDARD.encode(challenge) };
        let (guid, public_key, signature) = match self.request(begin).await? {
            Outcome::Ok(Reply::UnlockOffer { guid, public_key, signature }) => (guid, public_key, signature),
            other => bail!("expected an unlock offer, got {other:?}"),
        };
        let key_bytes: [u8; 32] = STANDARD
            .decode(&public_key)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("the one-time key is not 32 bytes"))?;
        let digest = envelope::offer_digest(&challenge, &key_bytes, &guid);
        let signature = Signature::from_der(&STANDARD.decode(signature)?)?;
        card_auth
            .verify_prehash(&digest, &signature)
            .context("the offer is not signed by this card's 9E key")?;
        Ok((guid.to_string(), public_key))
    }

    pub async fn unlock(&mut self, envelope: String, new_pin: &str) -> anyhow::Result<Outcome> {
        let operation = Operation::Unlock { reader: READER.into(), envelope, new_pin: new_pin.into() };
        self.request(operation).await
    }
}
