//! API integration tests: one binary, a fresh database per test, every test on SQLite and on
//! PostgreSQL (`TEST_POSTGRES_URL`, started by `scripts/test.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

mod card_import;
mod cards;
mod desk_unlock;
mod helpers;
#[path = "../../../tests/src/postgres.rs"]
mod postgres;
#[path = "../../../tests/src/smtp.rs"]
mod smtp;

mod audit_lanes;
mod audit_trail;
mod backup;
mod bounded_state;
mod faults;
mod health;
mod hostile_bodies;
mod issuance;
mod kek_rotation;
mod logs;
mod mail_tls;
mod migrations;
mod ra;
mod rate_limits;
mod registration;
mod sign_in;
mod spa_hosting;
mod unlock;
mod unlock_release;
mod write_turns;
