//! The journeys' rules (DESIGN.md, "The journeys"): what a request may do and what it changes,
//! called by the HTTP routes (`routes/`, which only parse and answer) and by the operator CLI.
//! Each module reads and writes through `store/` and records what happened in the audit trail.

pub mod desk_unlock;
pub mod issuance;
pub mod profile;
pub mod ra;
pub mod registration;
pub mod sign_in;
pub mod unlock;
pub mod unlock_release;
