//! Smartcard self-service backend: the JSON API under `/api` and the host of the built SPA.
//!
//! `main.rs` stays thin; [`startup::Application`] builds everything and tests drive
//! [`startup::app`] or a spawned [`startup::Application`] on port 0.

pub mod config;
pub mod db;
pub mod error;
pub mod routes;
pub mod security_headers;
pub mod startup;
pub mod static_files;
pub mod telemetry;
