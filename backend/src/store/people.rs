//! Users and the cards issued to them.

use sqlx::{any::AnyRow, Row};

use protocol::{card_guid::CardGuid, ra::UserSummary};

use super::Conn;
use crate::{db::Database, time::now_unix};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub user_id: String,
    pub name: String,
    pub contact_email: Option<String>,
    pub roles: Vec<String>,
}

impl User {
    pub(crate) fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Self::from_row_with_id(row, row.try_get("id")?)
    }

    /// From a row that names the person's id otherwise (a card's `user_ref`, say).
    fn from_row_with_id(row: &AnyRow, id: i64) -> sqlx::Result<Self> {
        let roles: String = row.try_get("roles")?;
        Ok(Self {
            id,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            contact_email: row.try_get("contact_email")?,
            roles: roles.split_whitespace().map(str::to_owned).collect(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardStatus {
    Active,
    Suspended,
    Revoked,
}

impl CardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Active => "active",
            CardStatus::Suspended => "suspended",
            CardStatus::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "active" => CardStatus::Active,
            "suspended" => CardStatus::Suspended,
            // Anything unexpected is treated as the safest state.
            _ => CardStatus::Revoked,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: i64,
    pub guid: CardGuid,
    pub user_ref: i64,
    /// SubjectPublicKeyInfo DER of the 9A (PIV Authentication) key.
    pub piv_auth_key: Vec<u8>,
    /// SubjectPublicKeyInfo DER of the 9E (Card Authentication) key.
    pub card_auth_key: Vec<u8>,
    pub status: CardStatus,
    pub issued_at: i64,
}

impl Card {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            guid: super::guid_column(row, "guid")?,
            user_ref: row.try_get("user_ref")?,
            piv_auth_key: row.try_get("piv_auth_key")?,
            card_auth_key: row.try_get("card_auth_key")?,
            status: CardStatus::parse(&row.try_get::<String, _>("status")?),
            issued_at: row.try_get("issued_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub contact_email: Option<&'a str>,
    pub roles: &'a [String],
}

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("a user with id {0} already exists")]
    UserExists(String),
    #[error("no user has id {0}")]
    NoSuchUser(String),
    #[error("card {0} is already issued to someone else")]
    CardTaken(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const USER_COLUMNS: &str = "id, user_id, name, contact_email, roles";
/// [`USER_COLUMNS`] of a query that calls `users` `u`.
pub(crate) const USER_COLUMNS_OF_U: &str = "u.id, u.user_id, u.name, u.contact_email, u.roles";
const CARD_COLUMNS: &str = "id, guid, user_ref, piv_auth_key, card_auth_key, status, issued_at";

pub async fn add_user(db: &Database, new: &NewUser<'_>) -> Result<User, PeopleError> {
    if user_by_user_id(db, new.user_id).await?.is_some() {
        return Err(PeopleError::UserExists(new.user_id.to_owned()));
    }
    sqlx::query(
        "INSERT INTO users (user_id, name, contact_email, roles, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new.user_id)
    .bind(new.name)
    .bind(new.contact_email)
    .bind(new.roles.join(" "))
    .bind(now_unix())
    .execute(db.pool())
    .await?;
    user_by_user_id(db, new.user_id).await?.ok_or_else(|| PeopleError::NoSuchUser(new.user_id.to_owned()))
}

pub async fn user_by_user_id(db: &Database, user_id: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE user_id = $1"))
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// The users with these user ids (those that exist), in chunks of a few hundred per query.
pub async fn users_by_user_ids(db: &Database, user_ids: &[&str]) -> Result<Vec<User>, sqlx::Error> {
    let mut users = Vec::new();
    for chunk in user_ids.chunks(IN_CHUNK) {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users WHERE user_id IN ({})", placeholders(chunk.len()));
        let rows = chunk.iter().fold(sqlx::query(&sql), |q, id| q.bind(*id)).fetch_all(db.pool()).await?;
        for row in &rows {
            users.push(User::from_row(row)?);
        }
    }
    Ok(users)
}

/// The cards with these GUIDs (those on record), in chunks of a few hundred per query.
pub async fn cards_by_guids(db: &Database, guids: &[&str]) -> Result<Vec<Card>, sqlx::Error> {
    let mut cards = Vec::new();
    for chunk in guids.chunks(IN_CHUNK) {
        let sql = format!("SELECT {CARD_COLUMNS} FROM cards WHERE guid IN ({})", placeholders(chunk.len()));
        let rows = chunk.iter().fold(sqlx::query(&sql), |q, guid| q.bind(*guid)).fetch_all(db.pool()).await?;
        for row in &rows {
            cards.push(Card::from_row(row)?);
        }
    }
    Ok(cards)
}

/// Values in one `IN (…)`: well under every engine's limit on bound parameters.
const IN_CHUNK: usize = 500;

fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub async fn user_by_ref(db: &Database, id: i64) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// Records a personalised card as issued to `user`. Binding the same card to the same user
/// again is a no-op (so bootstrap scripts can be re-run).
pub async fn bind_card(
    db: &Database,
    user: &User,
    guid: &str,
    piv_auth_key: &[u8],
    card_auth_key: &[u8],
) -> Result<Card, PeopleError> {
    let guid = guid.to_ascii_lowercase();
    if let Some(existing) = card_by_guid(db, &guid).await? {
        return if existing.user_ref == user.id { Ok(existing) } else { Err(PeopleError::CardTaken(guid)) };
    }
    sqlx::query(
        "INSERT INTO cards (guid, user_ref, piv_auth_key, card_auth_key, status, issued_at) \
         VALUES ($1, $2, $3, $4, 'active', $5)",
    )
    .bind(&guid)
    .bind(user.id)
    .bind(piv_auth_key)
    .bind(card_auth_key)
    .bind(now_unix())
    .execute(db.pool())
    .await?;
    card_by_guid(db, &guid).await?.ok_or_else(|| PeopleError::CardTaken(guid))
}

pub async fn card_by_guid(db: &Database, guid: &str) -> Result<Option<Card>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {CARD_COLUMNS} FROM cards WHERE guid = $1"))
        .bind(guid.to_ascii_lowercase())
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(Card::from_row).transpose()
}

/// The card with `guid` and the person it was issued to, in one statement: sign-in's first
/// read (issue 16).
pub async fn card_and_holder(db: &Database, guid: &str) -> Result<Option<(Card, User)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.id, c.guid, c.user_ref, c.piv_auth_key, c.card_auth_key, c.status, c.issued_at, \
         u.user_id, u.name, u.contact_email, u.roles FROM cards c JOIN users u ON u.id = c.user_ref \
         WHERE c.guid = $1",
    )
    .bind(guid.to_ascii_lowercase())
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let card = Card::from_row(&row)?;
    let holder = User::from_row_with_id(&row, card.user_ref)?;
    Ok(Some((card, holder)))
}

pub async fn cards_of(db: &Database, user_ref: i64) -> Result<Vec<Card>, sqlx::Error> {
    let rows =
        sqlx::query(&format!("SELECT {CARD_COLUMNS} FROM cards WHERE user_ref = $1 ORDER BY issued_at, id"))
            .bind(user_ref)
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(Card::from_row).collect()
}

/// Records the card's PUK (sealed) if none is recorded yet: re-running a bootstrap never
/// overwrites a PUK an unlock has since rotated. Returns whether it was recorded.
pub async fn record_initial_puk(db: &Database, guid: &str, sealed_puk: &[u8]) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE cards SET puk_sealed = $1, puk_version = 1 WHERE guid = $2 AND puk_sealed IS NULL",
    )
    .bind(sealed_puk)
    .bind(guid.to_ascii_lowercase())
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Queues the open transaction behind any other that holds the person (a row lock on
/// PostgreSQL until commit; SQLite's write transactions are one at a time anyway), so a check
/// and the write it allows cannot interleave with another request's.
pub async fn hold(conn: &mut Conn, user_ref: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET unlock_failures = unlock_failures WHERE id = $1")
        .bind(user_ref)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A person's self-service unlock standing: wrong attempts so far, and when they were locked out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnlockStanding {
    pub failures: i64,
    pub locked_at: Option<i64>,
}

pub async fn unlock_standing(conn: &mut Conn, user_ref: i64) -> sqlx::Result<Option<UnlockStanding>> {
    let row = sqlx::query("SELECT unlock_failures, unlock_locked_at FROM users WHERE id = $1")
        .bind(user_ref)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| {
        Ok(UnlockStanding {
            failures: row.try_get("unlock_failures")?,
            locked_at: row.try_get("unlock_locked_at")?,
        })
    })
    .transpose()
}

/// Counts one unlock try as failed until its answers prove right, in one statement so that
/// parallel submissions cannot slip past the limit: the count with this try, or `None` when the
/// person is locked out or has no try left.
pub async fn reserve_unlock_try(conn: &mut Conn, user_ref: i64, max: i64) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE users SET unlock_failures = unlock_failures + 1 \
         WHERE id = $1 AND unlock_locked_at IS NULL AND unlock_failures < $2 RETURNING unlock_failures",
    )
    .bind(user_ref)
    .bind(max)
    .fetch_optional(&mut *conn)
    .await
}

/// Locks the person out of self-service; false if they were already.
pub async fn lock_out(conn: &mut Conn, user_ref: i64, now: i64) -> sqlx::Result<bool> {
    let locked =
        sqlx::query("UPDATE users SET unlock_locked_at = $1 WHERE id = $2 AND unlock_locked_at IS NULL")
            .bind(now)
            .bind(user_ref)
            .execute(&mut *conn)
            .await?;
    Ok(locked.rows_affected() == 1)
}

/// Forgets the wrong attempts after right answers; false if a parallel attempt locked the
/// person out meanwhile.
pub async fn clear_unlock_failures(conn: &mut Conn, user_ref: i64) -> sqlx::Result<bool> {
    let cleared =
        sqlx::query("UPDATE users SET unlock_failures = 0 WHERE id = $1 AND unlock_locked_at IS NULL")
            .bind(user_ref)
            .execute(&mut *conn)
            .await?;
    Ok(cleared.rows_affected() == 1)
}

/// An RA's clearing of a lockout and of the wrong attempts so far: false if there was nothing
/// to clear.
pub async fn clear_lockout(conn: &mut Conn, user_ref: i64) -> sqlx::Result<bool> {
    let cleared = sqlx::query(
        "UPDATE users SET unlock_failures = 0, unlock_locked_at = NULL \
         WHERE id = $1 AND (unlock_locked_at IS NOT NULL OR unlock_failures > 0)",
    )
    .bind(user_ref)
    .execute(&mut *conn)
    .await?;
    Ok(cleared.rows_affected() == 1)
}

// The card's PUK. The backend's invariant (journeys/unlock_release.rs): the card holds
// `puk_sealed` or `puk_pending_sealed`.

/// Whether the service holds card `id`'s PUK.
pub async fn puk_held(conn: &mut Conn, card_id: i64) -> sqlx::Result<bool> {
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cards WHERE id = $1 AND puk_sealed IS NOT NULL")
        .bind(card_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(held == 1)
}

/// The card's PUKs as sealed: the one on record and the pending one of a release.
#[derive(Debug, Clone)]
pub struct SealedPuks {
    pub current: Vec<u8>,
    pub pending: Vec<u8>,
}

/// Records `fresh` as the pending PUK unless one is pending already (in one statement, so two
/// releases racing for the same card agree on one), and returns both. `None`: no PUK is held.
pub async fn stage_pending_puk(
    conn: &mut Conn,
    guid: &str,
    fresh: &[u8],
) -> sqlx::Result<Option<SealedPuks>> {
    let row = sqlx::query(
        "UPDATE cards SET puk_pending_sealed = COALESCE(puk_pending_sealed, $1) \
         WHERE guid = $2 AND puk_sealed IS NOT NULL RETURNING puk_sealed, puk_pending_sealed",
    )
    .bind(fresh)
    .bind(guid)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(SealedPuks { current: row.try_get("puk_sealed")?, pending: row.try_get("puk_pending_sealed")? })
    })
    .transpose()
}

pub async fn pending_puk(conn: &mut Conn, guid: &str) -> sqlx::Result<Option<Vec<u8>>> {
    let pending: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT puk_pending_sealed FROM cards WHERE guid = $1")
            .bind(guid)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(pending.flatten())
}

/// Makes the pending PUK the card's PUK, if it is still `pending` (a later release may have
/// replaced it).
pub async fn promote_pending_puk(conn: &mut Conn, guid: &str, pending: &[u8]) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE cards SET puk_sealed = puk_pending_sealed, puk_pending_sealed = NULL, puk_version = puk_version + 1 \
         WHERE guid = $1 AND puk_pending_sealed = $2",
    )
    .bind(guid)
    .bind(pending)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets a card's status; a revoked card stays revoked.
pub async fn set_card_status(conn: &mut Conn, card_id: i64, status: CardStatus) -> sqlx::Result<()> {
    sqlx::query("UPDATE cards SET status = $1 WHERE id = $2 AND status <> 'revoked'")
        .bind(status.as_str())
        .bind(card_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A person a search found, and whether they were found by `exact` (their user id or a card's
/// GUID) rather than by a fragment.
#[derive(Debug)]
pub struct Found {
    pub person: UserSummary,
    pub exact: bool,
}

/// People whose name or contact email contains `fragment` (lowercase), at most `cap` found each
/// way, and those whose user id or a card GUID is exactly `exact`; by name.
pub async fn search(conn: &mut Conn, fragment: &str, exact: &str, cap: i64) -> sqlx::Result<Vec<Found>> {
    // LIKE wildcards typed by the officer are taken literally. One branch per way to match, so
    // each can use its own index, and each stops at `cap`: a caller asking for one more than it
    // shows learns that there are more without any branch finding, or sorting, all of them. A
    // common surname has tens of thousands of people in a million, which took seconds to sort
    // for a page no officer reads to the end (issue 16). A fragment is looked up in PostgreSQL's
    // trigram indexes, or the table is read until `cap` match, whichever the planner finds
    // cheaper for this fragment; so the statement is not kept prepared, which would soon get
    // one plan for every fragment.
    let pattern = format!("%{}%", fragment.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let rows = sqlx::query(
        "SELECT u.user_id, u.name, u.contact_email, u.unlock_locked_at, \
                (SELECT COUNT(*) FROM registrations r WHERE r.user_ref = u.id AND r.status = 'active') AS registered, \
                CASE WHEN u.user_id = $2 OR u.id IN (SELECT user_ref FROM cards WHERE guid = $2) THEN 1 ELSE 0 END AS exact \
         FROM users u \
         WHERE u.id IN ( \
             SELECT id FROM (SELECT id FROM users WHERE LOWER(name) LIKE $1 ESCAPE '\\' LIMIT $3) AS by_name \
             UNION SELECT id FROM (SELECT id FROM users WHERE LOWER(COALESCE(contact_email, '')) LIKE $1 ESCAPE '\\' \
                                   LIMIT $3) AS by_email \
             UNION SELECT id FROM users WHERE user_id = $2 \
             UNION SELECT user_ref FROM cards WHERE guid = $2) \
         ORDER BY u.name, u.user_id",
    )
    .persistent(false)
    .bind(&pattern)
    .bind(exact)
    .bind(cap)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Found {
                person: UserSummary {
                    user_id: row.try_get("user_id")?,
                    name: row.try_get("name")?,
                    contact_email: row.try_get("contact_email")?,
                    registered: row.try_get::<i64, _>("registered")? > 0,
                    locked_out: row.try_get::<Option<i64>, _>("unlock_locked_at")?.is_some(),
                },
                exact: row.try_get::<i64, _>("exact")? == 1,
            })
        })
        .collect()
}

/// A card an issuance finished: its keys and certificates, and its secrets as sealed.
#[derive(Debug)]
pub struct IssuedCard<'a> {
    pub guid: &'a str,
    pub user_ref: i64,
    pub piv_auth_key: &'a [u8],
    pub card_auth_key: &'a [u8],
    pub piv_auth_certificate: &'a [u8],
    pub card_auth_certificate: &'a [u8],
    pub puk_sealed: &'a [u8],
    pub mgmt_key_sealed: &'a [u8],
    pub issued_at: i64,
}

pub async fn insert_issued_card(conn: &mut Conn, card: &IssuedCard<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO cards (guid, user_ref, piv_auth_key, card_auth_key, piv_auth_certificate, card_auth_certificate, \
         status, issued_at, puk_sealed, mgmt_key_sealed) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9)",
    )
    .bind(card.guid)
    .bind(card.user_ref)
    .bind(card.piv_auth_key)
    .bind(card.card_auth_key)
    .bind(card.piv_auth_certificate)
    .bind(card.card_auth_certificate)
    .bind(card.issued_at)
    .bind(card.puk_sealed)
    .bind(card.mgmt_key_sealed)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
