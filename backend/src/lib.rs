//! Smartcard self-service backend: the JSON API under `/api` and the host of the built SPA.
//!
//! `main.rs` stays thin; [`startup::Application`] builds everything and tests drive
//! [`startup::app`] or a spawned [`startup::Application`] on port 0.

pub mod admin;
pub mod admin_issue;
pub mod admin_unlock;
pub mod audit;
pub mod backup;
pub mod card_import;
pub mod card_proof;
pub mod challenges;
pub mod codes;
pub mod config;
pub mod crash;
pub mod csrf;
pub mod db;
pub mod deadline;
pub mod error;
pub mod hashing;
pub mod journeys;
pub mod kek_rotation;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod openapi;
pub mod questions;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod secrets;
pub mod security_headers;
pub mod session;
pub mod startup;
pub mod static_files;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod trust;
pub mod vault;
