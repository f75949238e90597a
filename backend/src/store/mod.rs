//! The database, one module per aggregate: typed functions over a connection or an open
//! transaction, no rules. The journeys' rules (in `routes/` and the operator CLI) decide; these
//! read and write. Every SQL statement of the service that is not plumbing lives here or in the
//! small self-contained modules that own one table each (`audit`, `challenges`, `codes`, `mail`,
//! `session`).

pub mod issuances;
pub mod people;
pub mod registrations;
pub mod unlock_attempts;

/// A connection or the open transaction a function runs in (`&mut *tx`, or a pooled connection).
pub type Conn = sqlx::AnyConnection;
