//! Where an object lives: the county and village the server's scope check
//! (docs/access.md) compares with the caller's token. Codes only.

use uuid::Uuid;

use crate::{Conn, Result, col};

/// The stored county and village of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub county_code: String,
    pub village_code: String,
}

async fn place(conn: &mut Conn, sql: &'static str, id: Uuid) -> Result<Option<Place>> {
    let row = sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        Ok(Place {
            county_code: col(&row, "county_code")?,
            village_code: col(&row, "village_code")?,
        })
    })
    .transpose()
}

/// The county and village of a claim, as stored when it was submitted.
#[tracing::instrument(name = "store.places.claim", level = "info", skip_all)]
pub async fn claim(conn: &mut Conn, claim_id: Uuid) -> Result<Option<Place>> {
    place(
        conn,
        "SELECT county_code, village_code FROM claims WHERE claim_id = $1",
        claim_id,
    )
    .await
}

/// The county and village of an enrolled household.
#[tracing::instrument(name = "store.places.household", level = "info", skip_all)]
pub async fn household(conn: &mut Conn, household_id: Uuid) -> Result<Option<Place>> {
    place(
        conn,
        "SELECT county_code, village_code FROM households WHERE household_id = $1",
        household_id,
    )
    .await
}

/// The insurer stored with a county, if the county exists.
#[tracing::instrument(name = "store.places.insurer", level = "info", skip_all)]
pub async fn county_insurer(conn: &mut Conn, county_code: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT insurer FROM counties WHERE county_code = $1")
        .bind(county_code)
        .fetch_optional(conn)
        .await?;
    row.map(|row| col(&row, "insurer")).transpose()
}
