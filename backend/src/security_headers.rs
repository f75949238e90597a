//! Security headers on every response, and a Content-Security-Policy that admits the wasm app
//! and nothing more.
//!
//! Trunk's `index.html` boots the app with one inline module script; rather than allowing
//! `'unsafe-inline'`, the policy lists the SHA-256 of each inline script found in the served
//! `index.html` at start-up, so a rebuilt SPA is covered without configuration.

use axum::{
    extract::State,
    http::{header, HeaderName, HeaderValue},
    response::Response,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    csp: HeaderValue,
}

impl SecurityHeaders {
    /// Builds the policy for the given `index.html` files and card-agent WebSocket URLs.
    pub fn new(index_htmls: &[&str], agent_urls: &[String]) -> anyhow::Result<Self> {
        let script_hashes: String = index_htmls
            .iter()
            .flat_map(|html| inline_scripts(html))
            .map(|script| format!(" 'sha256-{}'", STANDARD.encode(Sha256::digest(script.as_bytes()))))
            .collect();
        let agents: String = agent_urls.iter().map(|url| format!(" {url}")).collect();
        let csp = format!(
            "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{script_hashes}; \
             style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'{agents}; \
             manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        Ok(Self { csp: HeaderValue::from_str(&csp)? })
    }

    pub fn csp(&self) -> &HeaderValue {
        &self.csp
    }
}

/// The contents of every `<script>` element without a `src` attribute, byte for byte as the
/// browser hashes them.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut scripts = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after_tag_name = &rest[start + "<script".len()..];
        let Some(open_end) = after_tag_name.find('>') else { break };
        let attributes = &after_tag_name[..open_end];
        let body_and_rest = &after_tag_name[open_end + 1..];
        let Some(close) = body_and_rest.find("</script>") else { break };
        if !attributes.contains("src=") {
            scripts.push(&body_and_rest[..close]);
        }
        rest = &body_and_rest[close..];
    }
    scripts
}

/// `map_response_with_state` middleware adding the headers to every response.
pub async fn apply(State(headers): State<SecurityHeaders>, mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, headers.csp.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Browsers ignore it over plain http (the local demo); behind TLS it pins https.
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    // API answers (challenges, profiles) must never be cached; the SPA's files set their own.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed_and_external_ones_are_not() {
        let html = r#"<head><script src="/a.js"></script><script type="module">boot();</script></head>"#;
        assert_eq!(inline_scripts(html), vec!["boot();"]);
        let headers = SecurityHeaders::new(&[html], &["ws://127.0.0.1:47101".into()]).unwrap();
        let csp = headers.csp().to_str().unwrap();
        let expected = STANDARD.encode(Sha256::digest(b"boot();"));
        assert!(csp.contains(&format!("'sha256-{expected}'")), "{csp}");
        assert!(csp.contains("connect-src 'self' ws://127.0.0.1:47101"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
