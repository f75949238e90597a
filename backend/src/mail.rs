//! Email, always through the `mail_outbox` table: a message is queued in the same transaction as
//! the change it reports, and a sender task delivers it with retries and backoff, so an SMTP
//! outage delays mail but loses none. Several instances may run: a row is claimed before sending.
//!
//! Transport: SMTP (`smtp_url`; TLS with the relay's certificate checked, from the first byte or
//! by STARTTLS, with `smtp_ca_file` for an internal relay's CA), or — when none is configured, as on a developer's machine — a
//! folder of `.eml` files under the data directory that a person can open.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use base64::{engine::general_purpose::STANDARD, Engine};
use lettre::{
    message::Mailbox,
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, CertificateStore, Tls, TlsParameters},
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use sqlx::{Any, Row, Transaction};
use tokio::sync::Notify;

use zeroize::Zeroizing;

use crate::{db::Database, time::now_unix, vault::Vault};

/// How long a sender may hold a claimed message before another instance may retry it.
const CLAIM_SECONDS: i64 = 120;
/// Backoff after the n-th failed attempt: 5 s, 10 s, 20 s, … capped at 2 minutes, so that a
/// code (good for 15 minutes) arrives soon after the relay is back.
fn backoff_seconds(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    5i64.saturating_mul(2i64.saturating_pow(exponent)).min(120)
}
/// A message the relay has not taken for this long is given up (and so is one it refused for
/// good): it would be stale, and it must not hold its address's later mail for ever.
const GIVE_UP_SECONDS: i64 = 24 * 3600;

#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(PathBuf),
}

impl Transport {
    /// The relay `smtp_url` names (its CA in `ca_file` for an internal one), or the folder when
    /// unset.
    pub fn from_settings(
        smtp_url: Option<&str>,
        ca_file: Option<&Path>,
        folder: PathBuf,
    ) -> anyhow::Result<Self> {
        let Some(url) = smtp_url else { return Ok(Transport::Folder(folder)) };
        let server = SmtpServer::parse(url)?;
        let tls = |host: &str| -> anyhow::Result<TlsParameters> {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(path) = ca_file {
                let pem = std::fs::read(path)
                    .with_context(|| format!("Failed to read smtp_ca_file {}", path.display()))?;
                let ca = Certificate::from_pem(&pem).context("smtp_ca_file is not a PEM certificate")?;
                params = params.certificate_store(CertificateStore::None).add_root_certificate(ca);
            }
            params.build().context("Failed to set up TLS to the mail relay")
        };
        let security = match server.security {
            Security::Plain => Tls::None,
            Security::StartTls => Tls::Required(tls(&server.host)?),
            Security::Implicit => Tls::Wrapper(tls(&server.host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
            .port(server.port)
            .tls(security)
            .timeout(Some(Duration::from_secs(20)));
        if let Some((user, password)) = server.credentials {
            anyhow::ensure!(
                server.security != Security::Plain
                    || matches!(server.host.as_str(), "127.0.0.1" | "localhost" | "::1"),
                "smtp_url has a password for a relay reached without TLS: use smtps:// or smtp+starttls://"
            );
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Transport::Smtp(builder.build()))
    }

    async fn send(&self, message: Message, id: i64) -> anyhow::Result<()> {
        match self {
            Transport::Smtp(smtp) => {
                smtp.send(message).await?;
            }
            Transport::Folder(folder) => {
                tokio::fs::create_dir_all(folder).await?;
                let path = folder.join(format!("{:010}-{id}.eml", now_unix()));
                tokio::fs::write(&path, message.formatted()).await?;
            }
        }
        Ok(())
    }
}

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `smtp://`: none (a relay on this host).
    Plain,
    /// `smtp+starttls://`: plain first, then STARTTLS, which the relay must offer.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// `scheme://[user:password@]host[:port]`.
#[derive(Debug, PartialEq, Eq)]
struct SmtpServer {
    security: Security,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl SmtpServer {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let (security, rest, default_port) = if let Some(rest) = url.strip_prefix("smtps://") {
            (Security::Implicit, rest, 465)
        } else if let Some(rest) = url.strip_prefix("smtp+starttls://") {
            (Security::StartTls, rest, 587)
        } else if let Some(rest) = url.strip_prefix("smtp://") {
            (Security::Plain, rest, 25)
        } else {
            anyhow::bail!("smtp_url must start with smtps://, smtp+starttls:// or smtp://");
        };
        let rest = rest.trim_end_matches('/');
        let (credentials, address) = match rest.rsplit_once('@') {
            Some((userinfo, address)) => {
                let (user, password) =
                    userinfo.split_once(':').context("smtp_url credentials are user:password")?;
                (Some((user.to_owned(), password.to_owned())), address)
            }
            None => (None, rest),
        };
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().context("smtp_url port is not a number")?),
            None => (address, default_port),
        };
        anyhow::ensure!(!host.is_empty(), "smtp_url has no host");
        Ok(Self { security, host: host.to_owned(), port, credentials })
    }
}

/// How long the record of a sent message is kept (its body is erased when it is sent).
const SENT_KEPT_SECONDS: i64 = 7 * 24 * 3600;

/// How a body sealed by the vault is stored (older rows hold plain text).
pub(crate) const SEALED_PREFIX: &str = "sealed:v1:";

/// Removes the records of mail sent or given up before `$1`, along the indexes on `sent_at` and
/// `failed_at` (test `the_mail_sweep_walks_the_indexes`).
pub const SWEEP: &str = "DELETE FROM mail_outbox WHERE sent_at < $1 OR failed_at < $1";

/// Mail waiting longer than this, with no failure yet, also counts as delayed.
const DELAYED_AFTER_SECONDS: i64 = 60;

/// Whether mail is late right now: a message is waiting after a failed try, or for over a
/// minute. Pages then say the email may take a little longer, instead of leaving a person to
/// ask for code after code.
pub async fn delayed(conn: &mut sqlx::AnyConnection) -> sqlx::Result<bool> {
    let waiting: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL \
         AND (last_error IS NOT NULL OR created_at < $1) LIMIT 1) AS late",
    )
    .bind(now_unix() - DELAYED_AFTER_SECONDS)
    .fetch_one(conn)
    .await?;
    Ok(waiting > 0)
}

/// The sender: wakes when told a message was queued, and every few seconds for retries.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Database,
    transport: Transport,
    from: Mailbox,
    wake: Arc<Notify>,
    /// Bodies wait sealed (they may hold a one-time code) for as long as the relay is down.
    vault: Vault,
}

impl Outbox {
    pub fn new(db: Database, transport: Transport, from: &str, vault: Vault) -> anyhow::Result<Self> {
        let from = from.parse().with_context(|| format!("mail_from {from:?} is not an email address"))?;
        Ok(Self { db, transport, from, wake: Arc::new(Notify::new()), vault })
    }

    /// Queues a message inside the caller's transaction, its body sealed; [`Outbox::wake`] after
    /// commit. Records of messages sent long ago are swept as new ones are queued, so the outbox
    /// stays as large as a week's mail.
    pub async fn enqueue(
        &self,
        tx: &mut Transaction<'static, Any>,
        to: &str,
        subject: &str,
        body: &str,
    ) -> anyhow::Result<()> {
        let now = now_unix();
        sqlx::query(SWEEP).bind(now - SENT_KEPT_SECONDS).execute(&mut **tx).await?;
        let sealed = format!("{SEALED_PREFIX}{}", STANDARD.encode(self.vault.seal_mail(to, body)?));
        sqlx::query(
            "INSERT INTO mail_outbox (to_addr, subject, body, created_at, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, 0, $4)",
        )
        .bind(to)
        .bind(subject)
        .bind(sealed)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        // Older mail to this address, waiting out a backoff, is due now: the new message waits
        // behind it, and must not wait out the old one's backoff after the relay is back.
        sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $1 \
             WHERE to_addr = $2 AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at > $1",
        )
        .bind(now)
        .bind(to)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    fn body_of(&self, to: &str, stored: &str) -> anyhow::Result<Zeroizing<String>> {
        match stored.strip_prefix(SEALED_PREFIX) {
            Some(b64) => {
                let sealed = STANDARD.decode(b64).context("a sealed mail body is not base64")?;
                self.vault
                    .open_mail(to, &sealed)
                    .map_err(|e| anyhow::anyhow!("a sealed mail body does not open: {e}"))
            }
            None => Ok(Zeroizing::new(stored.to_owned())),
        }
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until the process ends.
    pub async fn run(self) {
        loop {
            loop {
                match self.send_one().await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "mail outbox");
                        break;
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
        }
    }

    /// Claims and sends the oldest due message; `Ok(false)` when none is due. A message waits
    /// while an older one to the same address is unsent (by any instance), so that after an
    /// outage each person's mail arrives in the order it was written: the newest code last.
    pub async fn send_one(&self) -> anyhow::Result<bool> {
        let now = now_unix();
        let claimed = sqlx::query(
            "UPDATE mail_outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM mail_outbox m WHERE sent_at IS NULL AND failed_at IS NULL \
                         AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
                         AND NOT EXISTS (SELECT 1 FROM mail_outbox earlier WHERE earlier.to_addr = m.to_addr \
                                         AND earlier.sent_at IS NULL AND earlier.failed_at IS NULL \
                                         AND earlier.id < m.id) \
                         ORDER BY id LIMIT 1) \
             AND sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2) \
             RETURNING id, to_addr, subject, body, attempts, created_at",
        )
        .bind(now + CLAIM_SECONDS)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = claimed else { return Ok(false) };
        let id: i64 = row.try_get("id")?;
        let attempts: i64 = row.try_get("attempts")?;
        let created_at: i64 = row.try_get("created_at")?;
        // Err((cause, permanent)): a message that cannot be built, or that the relay refused for
        // good (5xx), will never go; anything else may once the relay is back.
        let result: Result<(), (anyhow::Error, bool)> = async {
            let message = async {
                let to_addr: String = row.try_get("to_addr")?;
                let body = self.body_of(&to_addr, &row.try_get::<String, _>("body")?)?;
                anyhow::Ok(
                    Message::builder()
                        .from(self.from.clone())
                        .to(to_addr.parse::<Mailbox>()?)
                        .subject(row.try_get::<String, _>("subject")?)
                        .body(body.to_string())?,
                )
            }
            .await
            .map_err(|e| (e, true))?;
            self.transport.send(message, id).await.map_err(|e| {
                let refused = e
                    .downcast_ref::<lettre::transport::smtp::Error>()
                    .is_some_and(lettre::transport::smtp::Error::is_permanent);
                (e, refused)
            })
        }
        .await;
        match result {
            Ok(()) => {
                // The body may hold a one-time code: once delivered it is not kept (codes are
                // stored only hashed; the row stays as the record of what was sent, and when).
                sqlx::query(
                    "UPDATE mail_outbox SET sent_at = $1, claimed_until = NULL, last_error = NULL, body = '' \
                     WHERE id = $2",
                )
                    .bind(now_unix())
                    .bind(id)
                    .execute(self.db.pool())
                    .await?;
                crate::metrics::global().mail_sent();
                tracing::info!(id, "mail sent");
            }
            Err((e, permanent)) if permanent || created_at < now_unix() - GIVE_UP_SECONDS => {
                crate::metrics::global().mail_failed();
                tracing::error!(id, attempts, error = %e, permanent, "mail given up");
                // Its body may hold a code; the row stays as the record that it never went.
                sqlx::query(
                    "UPDATE mail_outbox SET claimed_until = NULL, failed_at = $1, last_error = $2, body = '' \
                     WHERE id = $3",
                )
                .bind(now_unix())
                .bind(format!("{e:#}"))
                .bind(id)
                .execute(self.db.pool())
                .await?;
            }
            Err((e, _)) => {
                crate::metrics::global().mail_failed();
                let retry_at = now_unix() + backoff_seconds(attempts);
                tracing::warn!(id, attempts, error = %e, retry_at, "mail not sent; will retry");
                sqlx::query(
                    "UPDATE mail_outbox SET claimed_until = NULL, next_attempt_at = $1, last_error = $2 WHERE id = $3",
                )
                .bind(retry_at)
                .bind(format!("{e:#}"))
                .bind(id)
                .execute(self.db.pool())
                .await?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_name_host_port_and_optional_credentials() {
        let plain = SmtpServer::parse("smtp://mail.example:2525").unwrap();
        assert_eq!((plain.host.as_str(), plain.port, plain.credentials), ("mail.example", 2525, None));
        assert_eq!(plain.security, Security::Plain);
        let implicit = SmtpServer::parse("smtps://relay.nhs.example").unwrap();
        assert_eq!((implicit.security, implicit.port), (Security::Implicit, 465));
        let starttls = SmtpServer::parse("smtp+starttls://u:p@relay.nhs.example").unwrap();
        assert_eq!((starttls.security, starttls.port), (Security::StartTls, 587));
        let with_user = SmtpServer::parse("smtp://u:p@w@relay").unwrap();
        assert_eq!(with_user.port, 25);
        assert_eq!(
            with_user.credentials,
            Some(("u".to_owned(), "p@w".to_owned())),
            "a password may hold '@'"
        );
        assert!(SmtpServer::parse("http://x").is_err());
        assert!(
            Transport::from_settings(Some("smtp://u:p@relay.nhs.example"), None, PathBuf::new()).is_err(),
            "no password in clear"
        );
        assert!(SmtpServer::parse("smtp://host:port").is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_seconds(1), 5);
        assert_eq!(backoff_seconds(2), 10);
        assert_eq!(backoff_seconds(4), 40);
        assert_eq!(backoff_seconds(5), 80);
        assert_eq!(backoff_seconds(6), 120);
        assert_eq!(backoff_seconds(50), 120);
    }
}
