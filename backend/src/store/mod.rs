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

/// A GUID column, parsed: what was written was parsed on the way in, so a failure here is a
/// damaged row.
pub(crate) fn guid_column(
    row: &sqlx::any::AnyRow,
    column: &str,
) -> sqlx::Result<protocol::card_guid::CardGuid> {
    use sqlx::Row;
    protocol::card_guid::CardGuid::parse(&row.try_get::<String, _>(column)?)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
