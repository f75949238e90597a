//! A request id on every request: taken from the header a trusted proxy sets
//! (`request_id_header`), or generated; on every log line of the request (a field of the HTTP
//! trace's `request` span, [`span_for`], which encloses the handler) and in the `x-request-id`
//! response header, so a person's "it failed at 10:02" can be found in the logs.

use axum::{
    extract::{Request, State},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

pub const RESPONSE_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Which header, if any, carries a proxy's request id.
#[derive(Debug, Clone, Default)]
pub struct RequestIds {
    trusted_header: Option<HeaderName>,
}

impl RequestIds {
    pub fn new(trusted_header: Option<&str>) -> anyhow::Result<Self> {
        let trusted_header = trusted_header
            .map(|name| HeaderName::try_from(name.to_ascii_lowercase()))
            .transpose()
            .map_err(|_| anyhow::anyhow!("request_id_header is not a valid header name"))?;
        Ok(Self { trusted_header })
    }

    /// The proxy's id when it is a sensible one (it ends up in logs and headers), else a new one.
    fn for_request(&self, request: &Request) -> String {
        self.trusted_header
            .as_ref()
            .and_then(|name| request.headers().get(name))
            .and_then(|value| value.to_str().ok())
            .filter(|id| plausible(id))
            .map_or_else(generate, str::to_owned)
    }
}

/// At most 64 characters of letters, digits and `-_.:` — nothing a log reader could trip on.
fn plausible(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

fn generate() -> String {
    crate::secrets::random_bytes::<12>().iter().map(|b| format!("{b:02x}")).collect()
}

/// A request's id, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Gives the request its id (the trace layer inside makes its span with it) and answers with it.
pub async fn tag(State(ids): State<RequestIds>, mut request: Request, next: Next) -> Response {
    let id = ids.for_request(&request);
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(RESPONSE_HEADER, value);
    }
    response
}

/// The HTTP trace's span for a request: at INFO, so every line a handler logs carries the id.
pub fn span_for<B>(request: &Request<B>) -> tracing::Span {
    let id = request.extensions().get::<RequestId>().map_or("-", |id| id.0.as_str());
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(header: &str, value: &str) -> Request {
        Request::builder().header(header, value).body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_proxys_id_is_taken_only_from_the_trusted_header_and_only_when_plausible() {
        let behind_proxy = RequestIds::new(Some("X-Request-Id")).unwrap();
        assert_eq!(behind_proxy.for_request(&request_with("x-request-id", "edge-42.a")), "edge-42.a");
        let odd = behind_proxy.for_request(&request_with("x-request-id", "a b;c"));
        assert_eq!(odd.len(), 24, "replaced by a generated id");
        let direct = RequestIds::default().for_request(&request_with("x-request-id", "chosen-by-client"));
        assert_ne!(direct, "chosen-by-client", "a client cannot pick the id in the logs");
        assert!(!plausible(&"a".repeat(65)));
    }
}
