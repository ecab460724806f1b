//! The write path every handler takes: `App` and `App::write` (the county
//! lock, idempotency, the stored outcome and the audit entry in one
//! transaction, committed together with the writes queued beside it by
//! `group_commit`), the scope check (`scope`), the wire/domain edge
//! (`convert`), the one error type and its mapping to `Status` (`error`),
//! the personal-data key (`personal_data`), the business clock (`clock`)
//! and the operator's working-day calendar (`calendar`).

pub mod app;
pub mod calendar;
pub mod clock;
pub mod convert;
pub mod error;
pub mod group_commit;
pub mod personal_data;
pub mod scope;
