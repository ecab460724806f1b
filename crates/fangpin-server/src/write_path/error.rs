//! The service's errors and their one mapping to `tonic::Status`.

use fangpin_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, PreconditionViolation, StatusExt};

use fangpin_proto::tonic;

/// One bad field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid argument: {}", .0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; "))]
    InvalidArgument(Vec<Violation>),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    AlreadyExists(String),
    /// `kind` is the PreconditionFailure type, e.g. "STATE" or "PUBLICITY".
    #[error("{description}")]
    FailedPrecondition {
        kind: &'static str,
        subject: String,
        description: String,
    },
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    /// The role may call the method, but not in this way (a channel its
    /// role does not use). Decided from the request alone.
    #[error("{0}")]
    PermissionDenied(String),
    #[error(transparent)]
    Store(StoreError),
    /// A fault of the service that is not the store's: a stored sealed value
    /// that does not open, the random source failing. Internal, cause logged.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AppError {
    /// A closed year is the county's state, not a fault of the service.
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::YearClosed {
                county_code,
                policy_year,
            } => AppError::precondition(
                "YEAR_CLOSED",
                format!("ledger/{county_code}/{policy_year}"),
                format!(
                    "policy year {policy_year} of county {county_code} is closed; the county office must reopen it first"
                ),
            ),
            other => AppError::Store(other),
        }
    }
}

impl AppError {
    pub fn invalid(field: &str, description: impl Into<String>) -> AppError {
        AppError::InvalidArgument(vec![Violation {
            field: field.to_string(),
            description: description.into(),
        }])
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> AppError {
        AppError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn precondition(
        kind: &'static str,
        subject: impl ToString,
        description: impl Into<String>,
    ) -> AppError {
        AppError::FailedPrecondition {
            kind,
            subject: subject.to_string(),
            description: description.into(),
        }
    }

    /// A refusal that depends on recorded state rather than on the request's
    /// own content. It is stored under the request id, so a retry after the
    /// state changed still gets the first answer.
    pub fn is_business_rejection(&self) -> bool {
        matches!(
            self,
            AppError::NotFound { .. }
                | AppError::AlreadyExists(_)
                | AppError::FailedPrecondition { .. }
        )
    }
}

impl From<fangpin_domain::claim::TransitionError> for AppError {
    fn from(e: fangpin_domain::claim::TransitionError) -> AppError {
        AppError::precondition(
            "STATE",
            format!("claim.state={}", e.from.as_str()),
            e.to_string(),
        )
    }
}

impl From<fangpin_domain::follow_up::FollowUpError> for AppError {
    /// A follow-up rule refused the step: the contacts, the contact person
    /// and the visit date are the request's fields; the rest is the case's
    /// state.
    fn from(e: fangpin_domain::follow_up::FollowUpError) -> AppError {
        use fangpin_domain::follow_up::FollowUpError as E;
        match &e {
            E::ContactCount(_) | E::DuplicateContact(_) => {
                AppError::invalid("contacts", e.to_string())
            }
            E::NotAContact(_) => AppError::invalid("contact_name", e.to_string()),
            E::VisitTooEarly { .. } | E::VisitInFuture { .. } => {
                AppError::invalid("visited_on", e.to_string())
            }
            E::Cleared
            | E::AlreadyCleared
            | E::NotCleared
            | E::RiskRemains
            | E::TooManyVisits(_) => {
                AppError::precondition("FOLLOW_UP", "follow_up.status", e.to_string())
            }
        }
    }
}

impl From<fangpin_domain::review::EmergencyError> for AppError {
    /// The amounts are the request's; the rest is the claim's state.
    fn from(e: fangpin_domain::review::EmergencyError) -> AppError {
        use fangpin_domain::review::EmergencyError as E;
        match &e {
            E::OverLimit { .. } | E::OverApproved { .. } => {
                AppError::invalid("amount_yuan", e.to_string())
            }
            E::NotAnEmergency | E::AlreadyDecided(_) | E::TooLate(_) => {
                AppError::precondition("EMERGENCY", "claim.emergency", e.to_string())
            }
            E::NotApproved | E::Refused => {
                AppError::precondition("EMERGENCY_APPROVAL", "claim.emergency", e.to_string())
            }
        }
    }
}

impl From<fangpin_domain::review::DeliberationError> for AppError {
    /// Every deliberation problem is in the request's figures or its date.
    fn from(e: fangpin_domain::review::DeliberationError) -> AppError {
        use fangpin_domain::review::DeliberationError as E;
        let field = match &e {
            E::Members => "members",
            E::PresentAboveMembers { .. } | E::NoQuorum { .. } => "present",
            E::InFavourAbovePresent { .. } => "in_favour",
            E::InFuture { .. } | E::BeforeIntake { .. } => "held_on",
        };
        AppError::invalid(field, e.to_string())
    }
}

impl From<AppError> for Status {
    fn from(error: AppError) -> Status {
        match error {
            AppError::InvalidArgument(violations) => {
                let message = AppError::InvalidArgument(violations.clone()).to_string();
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|v| FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            AppError::NotFound { what, id } => {
                let message = format!("{what} {id} not found");
                let details = ErrorDetails::with_resource_info(what, id, "", "not found");
                Status::with_error_details(Code::NotFound, message, details)
            }
            AppError::AlreadyExists(message) => Status::new(Code::AlreadyExists, message),
            AppError::PermissionDenied(message) => Status::new(Code::PermissionDenied, message),
            AppError::FailedPrecondition {
                kind,
                subject,
                description,
            } => {
                let details =
                    ErrorDetails::with_precondition_failure(vec![PreconditionViolation::new(
                        kind,
                        subject,
                        description.clone(),
                    )]);
                Status::with_error_details(Code::FailedPrecondition, description, details)
            }
            AppError::RequestIdReused => {
                let details = ErrorDetails::with_bad_request(vec![FieldViolation::new(
                    "request_id",
                    "already used for a different request; generate a new id for a new request",
                )]);
                Status::with_error_details(Code::InvalidArgument, "request_id reused", details)
            }
            AppError::Store(e) if e.is_storage_full() => {
                // Health turns NOT_SERVING meanwhile (storage_watch).
                tracing::error!(error = %e, "the database is out of space");
                Status::resource_exhausted(
                    "the database is out of space; nothing of this call was recorded; \
                     retry with the same request_id once the operator frees space",
                )
            }
            AppError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                Status::unavailable(
                    "the database is busy or unreachable; retry with the same request_id",
                )
            }
            AppError::Store(e) => {
                // The cause goes to the log, never to the caller.
                tracing::error!(error = %e, "internal error");
                Status::internal("internal error")
            }
            AppError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
