//! The SPA host: fallback to `index.html`, content types, compression and security headers.

use reqwest::header;

use crate::helpers::{Engine, TestApp};

const INDEX: &str = r#"<!doctype html><html><head><script type="module">import init from '/app-0123456789abcdef.js'; init();</script></head><body></body></html>"#;

async fn app_with_dist() -> (TestApp, tempfile::TempDir) {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(dist.path().join("index.html"), INDEX).unwrap();
    // Compressible, like real wasm: repeated structure.
    let wasm: Vec<u8> = (0..50_000u32).map(|i| (i % 7) as u8).collect();
    std::fs::write(dist.path().join("app-0123456789abcdef_bg.wasm"), wasm).unwrap();
    let path = dist.path().to_owned();
    let app = TestApp::spawn_with(Engine::Sqlite, move |s| s.dist_dir = path).await;
    (app, dist)
}

#[tokio::test]
async fn client_side_routes_are_served_the_app_shell() {
    let (app, _dist) = app_with_dist().await;
    for path in ["/", "/unlock", "/profile/register"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(response.text().await.unwrap(), INDEX);
    }
}

#[tokio::test]
async fn wasm_is_application_wasm_and_compressed_when_the_browser_accepts_it() {
    let (app, _dist) = app_with_dist().await;
    let url = format!("{}/app-0123456789abcdef_bg.wasm", app.address);
    // reqwest is built without decompression, so the raw encoding is visible.
    for (accept, expected) in [("gzip", Some("gzip")), ("gzip, br", Some("br")), ("identity", None)] {
        let response = app.client.get(&url).header(header::ACCEPT_ENCODING, accept).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/wasm");
        let encoding =
            response.headers().get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(encoding.as_deref(), expected, "Accept-Encoding: {accept}");
        let body = response.bytes().await.unwrap();
        if expected.is_some() {
            assert!(body.len() < 50_000 / 4, "compressed to {} bytes", body.len());
        } else {
            assert_eq!(body.len(), 50_000);
        }
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let (app, _dist) = app_with_dist().await;
    for path in ["/", "/api/health", "/api/nope"] {
        let response = app.get(path).await;
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        if path.starts_with("/api") {
            assert_eq!(h["cache-control"], "no-store", "{path}");
        }
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
}

#[tokio::test]
async fn a_missing_asset_is_404_rather_than_the_app_shell() {
    let (app, _dist) = app_with_dist().await;
    assert_eq!(app.get("/missing-0123456789abcdef.js").await.status(), 404);
}
