//! The mail the backend sent, read as it arrives: with no `smtp_url` the backend writes each
//! message to `<data_dir>/mail` as an `.eml` file, the embedded deployment's transport.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Mutex,
    time::Duration,
};

use anyhow::bail;

#[derive(Debug)]
pub struct Mailbox {
    folder: PathBuf,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    files: HashSet<PathBuf>,
    /// Each address's messages, oldest first: (subject-ish kind, code).
    messages: HashMap<String, Vec<(String, Option<String>)>>,
}

impl Mailbox {
    pub fn new(folder: PathBuf) -> Self {
        Self { folder, seen: Mutex::new(Seen::default()) }
    }

    fn scan(&self) -> anyhow::Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.folder) else { return Ok(()) };
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "eml") || seen.files.contains(&path) {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            let Some(to) = header(&text, "To") else { continue };
            let kind = header(&text, "Subject").unwrap_or_default().to_lowercase();
            seen.messages.entry(to).or_default().push((kind, code_in(&text)));
            seen.files.insert(path);
        }
        Ok(())
    }

    /// The newest code sent to `address` in a message whose subject mentions `kind`.
    pub async fn wait_for_code(&self, address: &str, kind: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.scan()?;
            if let Some(code) = self.newest_code(address, kind) {
                return Ok(code);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no {kind} code reached {address}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn newest_code(&self, address: &str, kind: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.messages.get(address)?.iter().rev().find(|(k, _)| k.contains(kind)).and_then(|(_, c)| c.clone())
    }

    /// Messages to `address` so far whose subject mentions `kind`.
    pub fn count_of(&self, address: &str, kind: &str) -> anyhow::Result<usize> {
        self.scan()?;
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(seen.messages.get(address).map_or(0, |m| m.iter().filter(|(k, _)| k.contains(kind)).count()))
    }
}

/// An unfolded header's value (lettre writes `To: address` plainly for a bare address).
fn header(text: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}: ");
    let value = text.lines().take_while(|l| !l.is_empty()).find_map(|l| l.strip_prefix(&prefix))?;
    Some(value.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
}

/// The 8-digit code after "code is: ".
fn code_in(text: &str) -> Option<String> {
    let after = &text[text.find("code is: ")? + "code is: ".len()..];
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    (code.len() == 8).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_gives_its_address_and_code() {
        let text = "From: x\r\nTo: fay.0@bench.nhs.net\r\nSubject: Your smartcard unlock code\r\n\r\nYour smartcard unlock code is: 12345678\r\n";
        assert_eq!(header(text, "To").as_deref(), Some("fay.0@bench.nhs.net"));
        assert_eq!(code_in(text).as_deref(), Some("12345678"));
        assert_eq!(code_in("no code here"), None);
    }
}
