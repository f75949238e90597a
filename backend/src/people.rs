//! Users and the cards issued to them.

use sqlx::{any::AnyRow, Row};

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
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let roles: String = row.try_get("roles")?;
        Ok(Self {
            id: row.try_get("id")?,
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
    pub guid: String,
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
            guid: row.try_get("guid")?,
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
