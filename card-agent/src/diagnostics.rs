//! `card-agent --diagnostics`: what IT support asks for first — agent version, settings, whether
//! pcscd answers, each reader and its card (GUID, passcode tries, certificate expiry). The tray's
//! "Diagnostics" item shows the same text.

use base64::{engine::general_purpose::STANDARD, Engine};
use der::Decode;
use protocol::{
    agent::{CardIdentity, Outcome, PinState, Reply, PROTOCOL_VERSION},
    calendar::date_time,
};

use crate::{
    config::AgentConfig,
    ops,
    pcsc_worker::{Pcsc, Work},
    platform::{SMART_CARD_SERVICE, SMART_CARD_SERVICE_FIX},
};

/// Everything the report says, gathered first so the wording can be tested without a reader.
#[derive(Debug, Clone)]
pub struct Findings {
    pub settings_file: Option<String>,
    pub config: AgentConfig,
    pub service_up: bool,
    /// Each reader, and what reading its card gave (none: no card).
    pub readers: Vec<(String, Option<Result<CardIdentity, String>>)>,
}

/// Reads the state through `pcsc` (the running agent's own, or one just started — give its
/// monitor a moment to list the readers).
pub async fn gather(pcsc: &Pcsc, config: AgentConfig, settings_file: Option<String>) -> Findings {
    let service_up = pcsc::Context::establish(pcsc::Scope::User).is_ok();
    let mut readers = Vec::new();
    for reader in pcsc.readers() {
        let card = if reader.card_present {
            let identity: Work = Box::new(|s| match ops::card_identity(s) {
                Ok(card) => Outcome::Ok(Reply::Identity(card)),
                Err(e) => Outcome::Error(e),
            });
            Some(match pcsc.run(reader.name.clone(), identity).await {
                Outcome::Ok(Reply::Identity(card)) => Ok(card),
                Outcome::Error(e) => Err(e.message),
                Outcome::Ok(_) => Err("unexpected answer".to_owned()),
            })
        } else {
            None
        };
        readers.push((reader.name, card));
    }
    Findings { settings_file, config, service_up, readers }
}

/// When a DER certificate (base64) stops being valid, as `YYYY-MM-DD HH:MM` UTC.
fn expiry(certificate_b64: &str) -> Option<String> {
    let der = STANDARD.decode(certificate_b64).ok()?;
    let certificate = x509_cert::Certificate::from_der(&der).ok()?;
    let not_after = certificate.tbs_certificate.validity.not_after.to_unix_duration().as_secs();
    Some(date_time(i64::try_from(not_after).ok()?))
}

pub fn report(findings: &Findings) -> String {
    let mut out = format!(
        "Smartcard self-service card agent {} (protocol {PROTOCOL_VERSION})\n",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(&format!(
        "Settings: {}\n",
        findings.settings_file.as_deref().unwrap_or("built-in defaults (no agent.toml found)")
    ));
    out.push_str(&format!("Listening on: ws://127.0.0.1:{}\n", findings.config.port));
    let origins = &findings.config.allowed_origins;
    out.push_str(&format!(
        "Allowed origins: {}\n",
        if origins.is_empty() { "none — every web page is refused".to_owned() } else { origins.join(", ") }
    ));
    // Which backend keys each origin's unlocks and issuances must be signed with: the first
    // thing to check when a site's unlock says it is not trusted.
    for origin in origins {
        let keys = findings.config.trusted_keys(origin);
        let listed = keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        out.push_str(&format!(
            "Envelope keys for {origin}: {}\n",
            if keys.is_empty() { "none — unlock and issuance are refused".to_owned() } else { listed }
        ));
    }
    out.push_str(&format!(
        "Self-service site: {}\n",
        findings.config.self_service_url.as_deref().unwrap_or("not set")
    ));
    if !findings.service_up {
        out.push_str(&format!(
            "Smart card service ({SMART_CARD_SERVICE}): NOT RUNNING — {SMART_CARD_SERVICE_FIX}\n"
        ));
        return out;
    }
    out.push_str(&format!("Smart card service ({SMART_CARD_SERVICE}): running\n"));
    if findings.readers.is_empty() {
        out.push_str("Card readers: none found — plug in your card reader\n");
    }
    for (reader, card) in &findings.readers {
        match card {
            None => out.push_str(&format!("Reader \"{reader}\": no card\n")),
            Some(Err(problem)) => {
                out.push_str(&format!("Reader \"{reader}\": a card that cannot be read: {problem}\n"))
            }
            Some(Ok(card)) => {
                let pin = match card.pin {
                    PinState::Blocked => "LOCKED (too many wrong passcodes)".to_owned(),
                    PinState::Ready { tries_left: Some(n) } => format!("{n} passcode tries left"),
                    PinState::Ready { tries_left: None } => "passcode state not reported".to_owned(),
                };
                let holder = card.holder.as_deref().map(|name| format!(" ({name})")).unwrap_or_default();
                out.push_str(&format!("Reader \"{reader}\": card {}{holder}, {pin}\n", card.guid));
                for (label, certificate) in [
                    ("PIV Authentication (9A)", &card.piv_auth_certificate),
                    ("Card Authentication (9E)", &card.card_auth_certificate),
                ] {
                    let state = match certificate.as_deref().map(expiry) {
                        None => "none".to_owned(),
                        Some(None) => "present but unreadable".to_owned(),
                        Some(Some(until)) => format!("valid until {until} UTC"),
                    };
                    out.push_str(&format!("  {label} certificate: {state}\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(service_up: bool, readers: Vec<(String, Option<Result<CardIdentity, String>>)>) -> Findings {
        Findings { settings_file: None, config: AgentConfig::default(), service_up, readers }
    }

    #[test]
    fn a_missing_pcscd_is_said_plainly() {
        let text = report(&findings(false, Vec::new()));
        assert!(
            text.contains(&format!("({SMART_CARD_SERVICE}): NOT RUNNING — {SMART_CARD_SERVICE_FIX}")),
            "{text}"
        );
        assert!(text.contains("Allowed origins: none"), "{text}");
    }

    #[test]
    fn each_origins_envelope_keys_are_listed() {
        let key = envelope::EnvelopeSigner::from_seed(&[1; 32]).trusted_key().to_string();
        let mut with_origins = findings(true, Vec::new());
        with_origins.config.allowed_origins = vec!["https://a.example".into(), "https://b.example".into()];
        with_origins.config.envelope_keys.insert("https://a.example".into(), vec![key.clone()]);
        let text = report(&with_origins);
        assert!(text.contains(&format!("Envelope keys for https://a.example: {key}")), "{text}");
        assert!(text.contains("Envelope keys for https://b.example: none"), "{text}");
    }

    #[test]
    fn each_reader_and_card_is_described() {
        let locked = CardIdentity {
            guid: "00112233445566778899aabbccddeeff".parse().unwrap(),
            holder: Some("Lee Example".into()),
            piv_auth_certificate: Some("bm90IGRlcg==".into()),
            card_auth_certificate: None,
            pin: PinState::Blocked,
        };
        let text = report(&findings(
            true,
            vec![
                ("R0".into(), Some(Ok(locked))),
                ("R1".into(), None),
                ("R2".into(), Some(Err("not PIV".into()))),
            ],
        ));
        assert!(
            text.contains("Reader \"R0\": card 00112233445566778899aabbccddeeff (Lee Example), LOCKED"),
            "{text}"
        );
        assert!(text.contains("PIV Authentication (9A) certificate: present but unreadable"), "{text}");
        assert!(text.contains("Card Authentication (9E) certificate: none"), "{text}");
        assert!(text.contains("Reader \"R1\": no card"), "{text}");
        assert!(text.contains("cannot be read: not PIV"), "{text}");
    }
}
