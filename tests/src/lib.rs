//! Harness for the end-to-end tests: free ports, child processes that die with the test, a
//! minimal W3C WebDriver client, and the real backend serving the real `dist/`.

pub mod agent;
pub mod browser;
pub mod postgres;
pub mod process;
pub mod self_service;
pub mod smartcard;
pub mod smtp;
pub mod system;

use std::path::PathBuf;

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}
