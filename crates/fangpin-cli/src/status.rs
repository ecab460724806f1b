//! Turns a failed command into a message a county clerk can act on: the gRPC
//! code, the server's message, and the structured details (which field is
//! wrong, which state forbids the step) that the server puts in the status.

use std::error::Error as _;
use std::fmt::Write as _;

use fangpin_proto::tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::ctx::Ctx;

/// The canonical upper-case names, as in the gRPC spec and server logs;
/// `Code`'s Debug form (`FailedPrecondition`) would not match either.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Whether a call failed in the TLS handshake: rustls' certificate errors
/// and the server's alerts name themselves only in the source chain.
fn tls_refused(status: &Status) -> bool {
    let mut texts = vec![status.message().to_owned()];
    let mut source = status.source();
    while let Some(cause) = source {
        texts.push(cause.to_string());
        source = cause.source();
    }
    texts
        .iter()
        .any(|text| text.contains("peer certificate") || text.contains("received fatal alert"))
}

pub fn describe_status(status: &Status) -> String {
    let mut out = format!("error: {}: {}", code_name(status.code()), status.message());
    let details = status.get_error_details();
    if let Some(bad) = details.bad_request() {
        for v in &bad.field_violations {
            let _ = write!(out, "\n  field {}: {}", v.field, v.description);
        }
    }
    if let Some(failure) = details.precondition_failure() {
        for v in &failure.violations {
            let _ = write!(out, "\n  precondition {}", v.r#type);
            if !v.subject.is_empty() {
                let _ = write!(out, " ({})", v.subject);
            }
            // Servers often use the one violation's text as the message too.
            if v.description != status.message() {
                let _ = write!(out, ": {}", v.description);
            }
        }
    }
    if let Some(info) = details.resource_info() {
        let _ = write!(
            out,
            "\n  resource {} {}",
            info.resource_type, info.resource_name
        );
        if !info.description.is_empty() {
            let _ = write!(out, ": {}", info.description);
        }
    }
    if let Some(info) = details.error_info() {
        let _ = write!(out, "\n  reason {} ({})", info.reason, info.domain);
    }
    // Transport failures carry the real cause (connection refused, DNS) in
    // the source chain, not in the message.
    // Each layer tends to repeat the one below, so print each text once.
    let mut seen = vec![status.message().to_owned()];
    let mut source = status.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !seen.contains(&text) {
            let _ = write!(out, "\n  cause: {text}");
            seen.push(text);
        }
        source = cause.source();
    }
    out
}

pub fn report(ctx: &Ctx, err: &anyhow::Error) {
    let status = err.chain().find_map(|e| e.downcast_ref::<Status>());
    match status {
        Some(status) => {
            eprintln!("{}", describe_status(status));
            let lost = matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
            );
            if tls_refused(status) {
                // The server is there; the handshake is what failed.
                eprintln!(
                    "  the TLS handshake with {} failed: check --ca-cert (the CA of the \
                     server's certificate), the host name in --server, and for mutual \
                     TLS --client-cert and --client-key",
                    ctx.server()
                );
            } else if status.code() == Code::Unavailable {
                eprintln!(
                    "  is the server running at {}? (set --server or FANGPIN_SERVER)",
                    ctx.server()
                );
            }
            // The request may or may not have been applied; only a retry with
            // the same id is safe.
            if let (true, Some(id)) = (lost, ctx.used_request_id()) {
                eprintln!("  to retry safely, rerun the same command with --request-id {id}");
            }
        }
        None => eprintln!("error: {err:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation, PreconditionViolation};

    #[test]
    fn decodes_field_and_precondition_violations() {
        let mut details = ErrorDetails::with_bad_request(vec![FieldViolation::new(
            "head.id_number",
            "check digit does not match",
        )]);
        details.set_precondition_failure(vec![PreconditionViolation::new(
            "STATE",
            "claim/c1",
            "claim is received, not in_publicity",
        )]);
        let status = Status::with_error_details(Code::InvalidArgument, "bad request", details);
        let text = describe_status(&status);
        assert!(
            text.starts_with("error: INVALID_ARGUMENT: bad request"),
            "{text}"
        );
        assert!(
            text.contains("field head.id_number: check digit does not match"),
            "{text}"
        );
        assert!(
            text.contains("precondition STATE (claim/c1): claim is received, not in_publicity"),
            "{text}"
        );
    }

    #[test]
    fn plain_status_has_no_detail_lines() {
        let status = Status::not_found("no claim c9");
        assert_eq!(describe_status(&status), "error: NOT_FOUND: no claim c9");
    }

    #[test]
    fn a_refused_handshake_is_told_from_a_missing_server() {
        assert!(tls_refused(&Status::unavailable(
            "invalid peer certificate: UnknownIssuer"
        )));
        assert!(!tls_refused(&Status::unavailable(
            "tcp connect error: Connection refused"
        )));
    }
}
