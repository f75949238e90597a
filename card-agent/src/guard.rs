//! The handshake guard. A web page anywhere can try `new WebSocket("ws://127.0.0.1:47101")`;
//! browsers always send its `Origin`, so only allow-listed origins get in. A DNS-rebinding page
//! reaches us with its own host name in `Host`, so only loopback hosts with our port pass.

/// Why a handshake was refused (logged; the client only sees HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no Origin header")]
    NoOrigin,
    #[error("origin {0:?} is not allowed")]
    OriginNotAllowed(String),
    #[error("no Host header")]
    NoHost,
    #[error("host {0:?} is not a loopback name with the agent's port")]
    HostNotLoopback(String),
}

/// Accepts the handshake only for an allowed `Origin` and a loopback `Host` on `port`.
pub fn check(origin: Option<&str>, host: Option<&str>, allowed: &[String], port: u16) -> Result<(), Refusal> {
    let origin = origin.ok_or(Refusal::NoOrigin)?;
    let normalised = origin.trim_end_matches('/').to_ascii_lowercase();
    if !allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(&normalised)) {
        return Err(Refusal::OriginNotAllowed(origin.to_owned()));
    }
    let host = host.ok_or(Refusal::NoHost)?;
    if !is_loopback_host(host, port) {
        return Err(Refusal::HostNotLoopback(host.to_owned()));
    }
    Ok(())
}

fn is_loopback_host(host: &str, port: u16) -> bool {
    let (name, host_port) = match host.rsplit_once(':') {
        // `[::1]:47101`
        Some((name, p)) if !p.contains(']') => (name, p.parse::<u16>().ok()),
        _ => (host, None),
    };
    // Browsers always send the port for a non-default one; require it to be ours.
    host_port == Some(port)
        && matches!(name.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["https://selfservice.example.nhs.uk".into(), "http://127.0.0.1:8080".into()]
    }

    #[test]
    fn an_allowed_origin_on_a_loopback_host_passes() {
        for host in ["127.0.0.1:47101", "localhost:47101", "[::1]:47101", "LOCALHOST:47101"] {
            assert_eq!(check(Some("http://127.0.0.1:8080"), Some(host), &allowed(), 47101), Ok(()), "{host}");
        }
        assert_eq!(
            check(Some("https://SelfService.example.nhs.uk/"), Some("127.0.0.1:47101"), &allowed(), 47101),
            Ok(())
        );
    }

    #[test]
    fn foreign_or_missing_origins_are_refused() {
        assert_eq!(
            check(Some("https://evil.example"), Some("127.0.0.1:47101"), &allowed(), 47101),
            Err(Refusal::OriginNotAllowed("https://evil.example".into()))
        );
        assert_eq!(check(None, Some("127.0.0.1:47101"), &allowed(), 47101), Err(Refusal::NoOrigin));
        // A look-alike prefix is not the allowed origin.
        assert!(check(
            Some("http://127.0.0.1:8080.evil.example"),
            Some("127.0.0.1:47101"),
            &allowed(),
            47101
        )
        .is_err());
        assert!(check(Some("null"), Some("127.0.0.1:47101"), &allowed(), 47101).is_err());
    }

    #[test]
    fn rebinding_hosts_and_wrong_ports_are_refused() {
        for host in
            ["evil.example:47101", "127.0.0.1.nip.io:47101", "127.0.0.1:8080", "127.0.0.1", "10.0.0.1:47101"]
        {
            assert_eq!(
                check(Some("http://127.0.0.1:8080"), Some(host), &allowed(), 47101),
                Err(Refusal::HostNotLoopback(host.into())),
                "{host}"
            );
        }
        assert_eq!(check(Some("http://127.0.0.1:8080"), None, &allowed(), 47101), Err(Refusal::NoHost));
    }
}
