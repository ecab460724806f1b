//! The per-call scope check (docs/access.md, "Scope rules"): after the role
//! check in `CallerLayer`, each handler asks whether the caller's token
//! covers the object the call is about, always by the object's *stored*
//! county and village, and before a replayed request id is answered.
//!
//! An object out of scope is refused with exactly the error an object that
//! does not exist gets (`AppError::NotFound` with the same kind and id), so
//! a caller cannot tell "not yours" from "not there".
//!
//! Without a principal (development mode without tokens) every check passes.

use std::collections::HashMap;

use fangpin_domain::access::{self, Principal, Role, Scope};
use fangpin_domain::claim::Channel;
use fangpin_domain::identity::{CountyCode, VillageCode};
use fangpin_store::places::{self, Place};
use uuid::Uuid;

use crate::write_path::app::App;
use crate::write_path::error::AppError;

/// The verified caller of the call this task serves; None when
/// authentication is off or outside a call.
pub fn principal() -> Option<Principal> {
    crate::transport::caller::current().and_then(|caller| caller.principal)
}

impl App {
    /// The insurer to check a surveyor against; other roles do not depend
    /// on it, so it is read only for surveyors. None: no such county.
    async fn insurer_for(&self, p: &Principal, county: &str) -> Result<Option<String>, AppError> {
        if !matches!(p.scope(), Scope::Insurer { .. }) {
            return Ok(Some(String::new()));
        }
        let mut conn = self.store.read().await?;
        Ok(places::county_insurer(&mut conn, county).await?)
    }

    /// Whether the caller may see county-wide objects of `county`.
    pub async fn sees_county(&self, county: &str) -> Result<bool, AppError> {
        let Some(p) = principal() else {
            return Ok(true);
        };
        let Ok(code) = CountyCode::parse(county) else {
            return Ok(false);
        };
        Ok(match self.insurer_for(&p, county).await? {
            Some(insurer) => access::may_access_county(&p, &code, &insurer),
            None => false,
        })
    }

    /// Whether the caller may see objects of `place`'s village.
    pub async fn sees_place(&self, place: &Place) -> Result<bool, AppError> {
        let Some(p) = principal() else {
            return Ok(true);
        };
        let Some(village) = village_of(place) else {
            return Ok(false);
        };
        Ok(match self.insurer_for(&p, &place.county_code).await? {
            Some(insurer) => access::may_access_village(&p, &village, &insurer),
            None => false,
        })
    }

    /// Refuses, as a county that does not exist, a county-wide call on a
    /// county outside the caller's scope.
    pub async fn authorize_county(&self, county: &str) -> Result<(), AppError> {
        if self.sees_county(county).await? {
            Ok(())
        } else {
            Err(AppError::not_found("county", county))
        }
    }

    /// `authorize_county` for a county being registered: there is no
    /// stored insurer yet, and only whole-county scopes may create one.
    pub fn authorize_new_county(&self, county: &CountyCode) -> Result<(), AppError> {
        match principal() {
            None => Ok(()),
            Some(p) => match p.scope() {
                Scope::Counties(counties) if counties.contains(county) => Ok(()),
                _ => Err(AppError::not_found("county", county.as_str())),
            },
        }
    }

    /// Refuses, as a claim that does not exist, a call on a claim outside
    /// the caller's scope; returns where the claim lives.
    pub async fn authorize_claim(&self, claim_id: Uuid) -> Result<Place, AppError> {
        let place = {
            let mut conn = self.store.read().await?;
            places::claim(&mut conn, claim_id).await?
        };
        match place {
            Some(place) if self.sees_place(&place).await? => Ok(place),
            _ => Err(AppError::not_found("claim", claim_id)),
        }
    }

    /// Refuses, as a household that does not exist, a call on a household
    /// outside the caller's scope.
    pub async fn authorize_household(&self, household_id: Uuid) -> Result<(), AppError> {
        let place = {
            let mut conn = self.store.read().await?;
            places::household(&mut conn, household_id).await?
        };
        match place {
            Some(place) if self.sees_place(&place).await? => Ok(()),
            _ => Err(AppError::not_found("household", household_id)),
        }
    }

    /// A filter for the rows of a listing, reading each county's insurer
    /// once.
    pub fn listing(&self) -> Listing<'_> {
        Listing {
            app: self,
            principal: principal(),
            insurers: HashMap::new(),
        }
    }
}

/// The rows of one listing call the caller may see.
pub struct Listing<'a> {
    app: &'a App,
    principal: Option<Principal>,
    insurers: HashMap<String, Option<String>>,
}

impl Listing<'_> {
    pub async fn shows(&mut self, place: &Place) -> Result<bool, AppError> {
        let Some(p) = &self.principal else {
            return Ok(true);
        };
        let Some(village) = village_of(place) else {
            return Ok(false);
        };
        if !self.insurers.contains_key(&place.county_code) {
            let insurer = self.app.insurer_for(p, &place.county_code).await?;
            self.insurers.insert(place.county_code.clone(), insurer);
        }
        Ok(match self.insurers.get(&place.county_code) {
            Some(Some(insurer)) => access::may_access_village(p, &village, insurer),
            _ => false,
        })
    }

    /// Whether a whole-county scope sees `county`'s rows (for a count, which
    /// has no rows to check one by one): the county's own roles when the
    /// token names it, the insurer when it serves the county. A village's
    /// or township's scope answers through `village_prefix` instead, and is
    /// true here when it lies in the county.
    pub async fn shows_county(&mut self, county: &CountyCode) -> Result<bool, AppError> {
        let Some(p) = &self.principal else {
            return Ok(true);
        };
        if !p.touches_county(county) {
            return Ok(false);
        }
        match p.scope() {
            Scope::Village(_) | Scope::Township(_) => Ok(true),
            Scope::Insurer { .. } | Scope::Counties(_) => {
                if !self.insurers.contains_key(county.as_str()) {
                    let insurer = self.app.insurer_for(p, county.as_str()).await?;
                    self.insurers.insert(county.as_str().to_string(), insurer);
                }
                Ok(match self.insurers.get(county.as_str()) {
                    Some(Some(insurer)) => access::may_access_county(p, county, insurer),
                    _ => false,
                })
            }
        }
    }

    /// The village-code prefix a listing of `county` may be narrowed to in
    /// SQL: the village or township of such a token, empty for whole-county
    /// scopes (whose rows `shows` still checks). None: nothing of `county`
    /// is in scope, so the page is empty.
    pub fn village_prefix(&self, county: &CountyCode) -> Option<String> {
        let Some(p) = &self.principal else {
            return Some(String::new());
        };
        if !p.touches_county(county) {
            return None;
        }
        Some(match p.scope() {
            Scope::Village(village) => village.as_str().to_string(),
            Scope::Township(township) => township.as_str().to_string(),
            Scope::Insurer { .. } | Scope::Counties(_) => String::new(),
        })
    }

    /// A surveyor lists its own work only: the name the queue is kept under
    /// is the token's subject, whatever the request says.
    pub fn own_surveyor(&self) -> Option<&str> {
        self.principal
            .as_ref()
            .filter(|p| p.role() == Role::Surveyor)
            .map(Principal::subject)
    }
}

/// The village of `place`. A village's code begins with its county's; a
/// row whose two codes disagree is corrupt, and is shown to nobody (None).
fn village_of(place: &Place) -> Option<VillageCode> {
    VillageCode::parse(&place.village_code)
        .ok()
        .filter(|village| village.county().as_str() == place.county_code)
}

/// Refuses a SubmitClaim through a channel the caller's role does not use
/// (`access::may_submit_via`).
pub fn authorize_channel(channel: Channel) -> Result<(), AppError> {
    match principal() {
        Some(p) if !access::may_submit_via(p.role(), channel) => {
            Err(AppError::PermissionDenied(format!(
                "role {} may not submit claims through channel {channel:?}",
                p.role()
            )))
        }
        _ => Ok(()),
    }
}

/// Checks the person a write is recorded under (`submitted_by`,
/// `filed_by`, `paid_by`, ...): with tokens it must be the caller's own
/// account, the token's subject, so that claim history and the audit log
/// name the same actor. Without tokens, anything the request says.
pub fn check_acting_person(field: &'static str, stated: &str) -> Result<(), AppError> {
    match principal() {
        Some(p) if stated != p.subject() => Err(AppError::invalid(
            field,
            "must be the caller's own account (the token's sub)",
        )),
        _ => Ok(()),
    }
}
