//! Cross-site request forgery defence for state-changing API calls, on top of the
//! `SameSite=Strict` session cookie: the browser's `Origin` must be this site.
//! (Browsers send `Origin` on every non-GET `fetch`; a forged form post from another site
//! carries that site's origin and is refused here.)

use axum::{
    extract::Request,
    http::{header, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

pub async fn require_same_origin(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let same_origin = match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => origin_matches_host(origin, host),
        // No Origin at all: only a same-origin fetch may say so through Fetch Metadata.
        (None, _) => text(header::HeaderName::from_static("sec-fetch-site")) == Some("same-origin"),
        _ => false,
    };
    if !same_origin {
        tracing::warn!(origin = text(header::ORIGIN), "cross-site state change refused");
        return ApiError::CrossSite.into_response();
    }
    next.run(request).await
}

/// `https://host:port` or `http://host:port` whose authority is exactly the `Host` header.
fn origin_matches_host(origin: &str, host: &str) -> bool {
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_sites_origin_matches() {
        assert!(origin_matches_host("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(origin_matches_host("https://selfservice.example", "selfservice.example"));
        assert!(!origin_matches_host("https://evil.example", "selfservice.example"));
        assert!(!origin_matches_host("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!origin_matches_host("null", "127.0.0.1:8080"));
    }
}
