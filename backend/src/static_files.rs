//! The built SPA, held in memory and compressed once.
//!
//! `dist/` is small (a few hundred KB), so every file is read, gzip- and brotli-compressed up
//! front, and served from memory with an ETag: no disk I/O or compression on the request path.
//! Brotli at its best quality takes seconds of CPU for the wasm bundles, so each compressed form
//! is kept beside its file (`app.wasm.br`, `app.wasm.gz`) and reused by the next start when it
//! decodes to exactly the file's bytes.
//! Paths that are not files fall back to `index.html` so client-side routes survive a reload.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Files under this size are not worth compressing.
const MIN_COMPRESS_SIZE: usize = 1024;

#[derive(Debug)]
struct Asset {
    content_type: &'static str,
    identity: Bytes,
    gzip: Option<Bytes>,
    brotli: Option<Bytes>,
    etag: HeaderValue,
    cache_control: &'static str,
}

#[derive(Debug, Clone, Default)]
pub struct StaticFiles {
    files: Arc<HashMap<String, Asset>>,
}

/// Apps other than the main SPA, each built by trunk into its own folder of `dist/`: the RA
/// console is a separate bundle, so cardholders never download staff-only code.
const APPS: [(&str, &str); 1] = [("/ra", "/ra/index.html")];

impl StaticFiles {
    /// Reads and compresses every file under `dist`. A missing folder yields an empty set (API-only
    /// mode, e.g. in the API tests); an unreadable file is an error.
    pub fn load(dist: &Path) -> anyhow::Result<Self> {
        let mut files = HashMap::new();
        if dist.is_dir() {
            for path in walk(dist)? {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("Failed to read {}", path.display()))?;
                let relative = path.strip_prefix(dist)?.to_string_lossy().replace('\\', "/");
                let asset = Asset::new(&relative, &path, bytes)?;
                files.insert(format!("/{relative}"), asset);
            }
        }
        Ok(Self { files: Arc::new(files) })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The text of every app's `index.html` (the SPA's, the RA console's), for the CSP hashes.
    pub fn index_htmls(&self) -> Vec<&str> {
        std::iter::once("/index.html")
            .chain(APPS.iter().map(|(_, index)| *index))
            .filter_map(|path| self.files.get(path))
            .filter_map(|a| std::str::from_utf8(&a.identity).ok())
            .collect()
    }

    /// The `index.html` that serves a client-side route: the RA console's under its prefix.
    fn index_for(&self, path: &str) -> Option<&Asset> {
        APPS.iter()
            .find(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}/")))
            .and_then(|(_, index)| self.files.get(*index))
            .or_else(|| self.files.get("/index.html"))
    }

    /// Answers a GET or HEAD for a path outside `/api`.
    pub fn respond(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        if method != Method::GET && method != Method::HEAD {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let path = uri.path();
        let asset = match self.files.get(path) {
            Some(asset) => asset,
            // A path whose last segment has a dot asks for a file: a missing one is a 404, not the
            // app (a broken <script> would otherwise receive HTML).
            None if last_segment_has_extension(path) => return StatusCode::NOT_FOUND.into_response(),
            None => match self.index_for(path) {
                Some(index) => index,
                None => {
                    return (StatusCode::NOT_FOUND, "The web app is not built (dist/ is empty).")
                        .into_response()
                }
            },
        };
        asset.respond(method, headers)
    }
}

impl Asset {
    fn new(relative: &str, path: &Path, bytes: Vec<u8>) -> anyhow::Result<Self> {
        let content_type = content_type(relative);
        let compressible = is_compressible(content_type) && bytes.len() >= MIN_COMPRESS_SIZE;
        let (gzip, brotli) = if compressible {
            (
                smaller(compressed(path, &bytes, Coding::Gzip)?, bytes.len()),
                smaller(compressed(path, &bytes, Coding::Brotli)?, bytes.len()),
            )
        } else {
            (None, None)
        };
        let digest = Sha256::digest(&bytes);
        let etag = HeaderValue::from_str(&format!("\"{}\"", hex16(&digest)))?;
        let cache_control = if relative == "index.html" || !looks_content_hashed(relative) {
            "no-cache"
        } else {
            "public, max-age=31536000, immutable"
        };
        Ok(Self { content_type, identity: Bytes::from(bytes), gzip, brotli, etag, cache_control })
    }

    fn respond(&self, method: &Method, headers: &HeaderMap) -> Response {
        let accepted = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
        let (body, encoding) = match (&self.brotli, &self.gzip) {
            (Some(br), _) if accepts(accepted, "br") => (br.clone(), Some("br")),
            (_, Some(gz)) if accepts(accepted, "gzip") => (gz.clone(), Some("gzip")),
            _ => (self.identity.clone(), None),
        };
        // A strong ETag must differ per content coding (RFC 9110 §8.8.3).
        let etag = match encoding {
            Some(coding) => HeaderValue::from_str(&format!(
                "{}-{coding}\"",
                self.etag.to_str().unwrap_or("").trim_end_matches('"')
            ))
            .unwrap_or_else(|_| self.etag.clone()),
            None => self.etag.clone(),
        };
        let mut builder = Response::builder()
            .header(header::CONTENT_TYPE, self.content_type)
            .header(header::ETAG, etag)
            .header(header::CACHE_CONTROL, self.cache_control)
            .header(header::VARY, "Accept-Encoding");
        if headers.get(header::IF_NONE_MATCH).is_some_and(|v| etag_matches(v, &self.etag)) {
            return builder.status(StatusCode::NOT_MODIFIED).body(Body::empty()).unwrap_or_default();
        }
        if let Some(encoding) = encoding {
            builder = builder.header(header::CONTENT_ENCODING, encoding);
        }
        builder = builder.header(header::CONTENT_LENGTH, body.len());
        let body = if method == Method::HEAD { Body::empty() } else { Body::from(body) };
        builder.body(body).unwrap_or_default()
    }
}

/// The files of `dir` and its folders, without the compressed forms kept beside them.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("Failed to list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else if !is_kept_form(&path) {
            out.push(path);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
enum Coding {
    Gzip,
    Brotli,
}

impl Coding {
    const ALL: [Coding; 2] = [Coding::Gzip, Coding::Brotli];

    fn extension(self) -> &'static str {
        match self {
            Coding::Gzip => "gz",
            Coding::Brotli => "br",
        }
    }

    fn encode(self, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
        match self {
            Coding::Gzip => gzip(bytes),
            Coding::Brotli => brotli(bytes),
        }
    }

    /// `encoded` decoded, reading at most one byte more than `limit` (so a wrong file is found
    /// out without inflating it whole).
    fn decode(self, encoded: &[u8], limit: usize) -> Option<Vec<u8>> {
        use std::io::Read;
        let cap = u64::try_from(limit).ok()?.saturating_add(1);
        let mut out = Vec::with_capacity(limit);
        let read = match self {
            // Every member: a second one appended to a kept file would be served with it.
            Coding::Gzip => flate2::read::MultiGzDecoder::new(encoded).take(cap).read_to_end(&mut out),
            Coding::Brotli => brotli::Decompressor::new(encoded, 64 * 1024).take(cap).read_to_end(&mut out),
        };
        read.ok().map(|_| out)
    }
}

/// `<file>.gz` or `<file>.br`: a compressed form kept beside its file (or a half-written one).
fn is_kept_form(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let original = |ext: &str| name.strip_suffix(ext).is_some_and(|stem| path.with_file_name(stem).is_file());
    Coding::ALL.iter().any(|c| original(&format!(".{}", c.extension()))) || name.ends_with(".compressing")
}

/// `bytes` (the file at `path`) in `coding`: the form kept beside the file when it decodes to
/// exactly these bytes, else compressed now and kept there for the next start. Keeping it is
/// best effort: a read-only `dist/` only means compressing again next time.
fn compressed(path: &Path, bytes: &[u8], coding: Coding) -> anyhow::Result<Vec<u8>> {
    let mut kept = path.as_os_str().to_owned();
    kept.push(format!(".{}", coding.extension()));
    let kept = PathBuf::from(kept);
    // Only a regular file (not a link, a device or a pipe) is read back.
    let regular = std::fs::symlink_metadata(&kept).is_ok_and(|m| m.is_file());
    if let Some(stored) = regular.then(|| std::fs::read(&kept).ok()).flatten() {
        if coding.decode(&stored, bytes.len()).as_deref() == Some(bytes) {
            return Ok(stored);
        }
    }
    let fresh = coding.encode(bytes)?;
    // Written aside and renamed, so that another process starting now never reads half a file.
    let mut partial = kept.as_os_str().to_owned();
    partial.push(format!(".{}.compressing", std::process::id()));
    let partial = PathBuf::from(partial);
    if let Err(e) = std::fs::write(&partial, &fresh).and_then(|()| std::fs::rename(&partial, &kept)) {
        let _ = std::fs::remove_file(&partial);
        tracing::debug!(path = %kept.display(), error = %e, "compressed file not kept");
    }
    Ok(fresh)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn is_compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || matches!(content_type, "application/wasm" | "application/json" | "image/svg+xml" | "image/x-icon")
        || content_type.starts_with("application/manifest")
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

fn brotli(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
    Ok(out)
}

/// Keeps a compressed form only if it actually saves bytes.
fn smaller(compressed: Vec<u8>, original: usize) -> Option<Bytes> {
    (compressed.len() < original).then(|| Bytes::from(compressed))
}

/// Whether `Accept-Encoding` admits `coding` (present and not `q=0`).
fn accepts(accept_encoding: &str, coding: &str) -> bool {
    let items: Vec<(&str, bool)> = accept_encoding
        .split(',')
        .map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts
                .any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0));
            (name, refused)
        })
        .collect();
    // An explicit entry for the coding decides; the wildcard only speaks for unnamed codings.
    match items.iter().find(|(name, _)| name.eq_ignore_ascii_case(coding)) {
        Some((_, refused)) => !refused,
        None => items.iter().any(|(name, refused)| *name == "*" && !refused),
    }
}

fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(value) = if_none_match.to_str() else { return false };
    let Ok(etag) = etag.to_str() else { return false };
    // Any coding's tag of the same content matches: a 304 lets the cache keep its own coding.
    let base = etag.trim_end_matches('"');
    value.split(',').map(str::trim).any(|tag| {
        let tag = tag.trim_start_matches("W/");
        tag == "*"
            || tag == etag
            || tag.strip_prefix(base).is_some_and(|rest| matches!(rest, "-br\"" | "-gzip\""))
    })
}

fn last_segment_has_extension(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|segment| segment.contains('.'))
}

/// Trunk names outputs `name-<16 hex>.ext` (or `_bg.wasm`); those never change, so cache forever.
fn looks_content_hashed(path: &str) -> bool {
    let stem = path.rsplit('/').next().unwrap_or(path);
    let stem = stem.split('.').next().unwrap_or(stem).trim_end_matches("_bg");
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() >= 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn hex16(digest: &[u8]) -> String {
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The axum fallback: everything outside `/api` is the SPA.
pub async fn serve(
    axum::extract::State(files): axum::extract::State<StaticFiles>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    files.respond(&method, &uri, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, StaticFiles) {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        let files = StaticFiles::load(dir.path()).unwrap();
        (dir, files)
    }

    #[test]
    fn compressed_forms_are_kept_beside_their_files_and_reused_only_when_they_match() {
        let wasm: Vec<u8> = (0..20_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let (dir, _) = dist_with(&[("app-0123456789abcdef_bg.wasm", &wasm)]);
        let kept = |ext: &str| dir.path().join(format!("app-0123456789abcdef_bg.wasm.{ext}"));
        let first_br = std::fs::read(kept("br")).expect("the brotli form is kept");
        assert_eq!(Coding::Brotli.decode(&first_br, wasm.len()).unwrap(), wasm);
        assert!(kept("gz").is_file());

        // A kept form that does not decode to the file (another build's, or damaged) is replaced.
        std::fs::write(kept("br"), b"not brotli").unwrap();
        std::fs::write(kept("gz"), gzip(b"another build").unwrap()).unwrap();
        let files = StaticFiles::load(dir.path()).unwrap();
        let br = get(&files, "/app-0123456789abcdef_bg.wasm", "br");
        assert_eq!(br.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(std::fs::read(kept("br")).unwrap(), first_br);
        assert_eq!(Coding::Gzip.decode(&std::fs::read(kept("gz")).unwrap(), wasm.len()).unwrap(), wasm);
        // The kept forms are encodings of the file, not files of the site.
        assert_eq!(files.files.len(), 1);
        assert_eq!(get(&files, "/app-0123456789abcdef_bg.wasm.br", "br").status(), StatusCode::NOT_FOUND);
    }

    fn get(files: &StaticFiles, path: &str, accept: &str) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        files.respond(&Method::GET, &path.parse().unwrap(), &headers)
    }

    #[test]
    fn wasm_is_served_as_application_wasm_and_compressed_by_preference() {
        let wasm = vec![0u8; 10_000];
        let (_dir, files) =
            dist_with(&[("index.html", b"<html></html>"), ("app-0123456789abcdef_bg.wasm", &wasm)]);
        let br = get(&files, "/app-0123456789abcdef_bg.wasm", "gzip, deflate, br");
        assert_eq!(br.headers()[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(br.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(br.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        let gz = get(&files, "/app-0123456789abcdef_bg.wasm", "gzip");
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let plain = get(&files, "/app-0123456789abcdef_bg.wasm", "br;q=0, identity");
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::CONTENT_LENGTH], "10000");
    }

    #[test]
    fn client_routes_fall_back_to_index_but_missing_files_are_404() {
        let (_dir, files) = dist_with(&[("index.html", b"<html>app</html>")]);
        let route = get(&files, "/unlock/start", "");
        assert_eq!(route.status(), StatusCode::OK);
        assert_eq!(route.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(route.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(get(&files, "/missing-0123456789abcdef.js", "").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_ra_consoles_routes_fall_back_to_its_own_index() {
        let (_dir, files) =
            dist_with(&[("index.html", b"<html>app</html>"), ("ra/index.html", b"<html>ra</html>")]);
        let etag = |path: &str| get(&files, path, "").headers()[header::ETAG].clone();
        for path in ["/ra", "/ra/", "/ra/users/500000000001"] {
            assert_eq!(etag(path), etag("/ra/index.html"), "{path}");
        }
        assert_eq!(etag("/rabbit"), etag("/index.html"));
        assert_eq!(files.index_htmls().len(), 2);
    }

    #[test]
    fn a_matching_etag_gets_304() {
        let (_dir, files) = dist_with(&[("index.html", b"<html>app</html>")]);
        let first = get(&files, "/", "");
        let etag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        let again = files.respond(&Method::GET, &"/".parse().unwrap(), &headers);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn accept_encoding_parsing_honours_q_zero_and_wildcards() {
        assert!(accepts("gzip, br", "br"));
        assert!(accepts("GZIP;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0", "gzip"));
        assert!(accepts("*", "br"));
        assert!(!accepts("", "gzip"));
        assert!(!accepts("br;q=0, *", "br"), "an explicit refusal beats the wildcard");
        assert!(accepts("br;q=0, *", "gzip"));
    }

    #[test]
    fn only_trunk_hashed_names_are_cached_forever() {
        assert!(looks_content_hashed("frontend-5f2b3c4d5e6f7a8b.js"));
        assert!(looks_content_hashed("frontend-5f2b3c4d5e6f7a8b_bg.wasm"));
        assert!(!looks_content_hashed("favicon.ico"));
        assert!(!looks_content_hashed("nhs-logo.svg"));
    }
}
