//! The JSON wire types shared by the backend, the SPA and the card agent.
//!
//! Every type that crosses a process boundary lives here, so the three programs cannot drift.
//! Keep this crate free of heavy dependencies: it is compiled into the wasm SPA.

pub mod agent;
pub mod api;
pub mod calendar;
pub mod card_guid;
pub mod error_code;
pub mod passcode;
pub mod ra;
