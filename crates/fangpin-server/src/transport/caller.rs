//! Who is calling (the caller layer): authentication, the role check, and
//! the caller the audit log names (docs/audit-log.md).
//!
//! `App::write` appends an audit entry naming the caller and the gRPC method,
//! but it sees no `tonic::Request` (handlers own that), and changing every
//! handler to pass the caller down would touch each mutating RPC. Instead,
//! `CallerLayer` reads the method path and the caller from each call's HTTP/2
//! request and runs the call inside a task-local `Caller`, which
//! `App::write` reads with [`current`].
//!
//! The same layer is where every call is authenticated and its role checked
//! against the matrix (`auth::Authenticator::admit`): a refused call never
//! reaches its handler. With tokens, the actor is the token's subject and
//! the role its role. In development mode without `[auth]`, the actor is
//! whatever the client put in the `x-fangpin-actor` metadata (a claim, not a
//! proof) or `unauthenticated`, and the role is empty.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fangpin_domain::access::Principal;
use fangpin_proto::tonic::Status;
use fangpin_proto::tonic::codegen::{Service, http};

use crate::transport::auth::{Admission, Authenticator, Refusal};

/// The metadata key a client may use to name itself until tokens exist.
pub const ACTOR_HEADER: &str = "x-fangpin-actor";
/// The actor of a call that named nobody.
pub const UNAUTHENTICATED: &str = "unauthenticated";
/// Longest actor kept, in characters; a longer one is cut at this length.
pub const MAX_ACTOR_CHARS: usize = 128;

/// The caller of the current call, as the audit log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Who: the token's subject; in development mode without tokens, the
    /// `x-fangpin-actor` metadata or `unauthenticated`.
    pub actor: String,
    /// In which role: the token's; empty without tokens.
    pub role: String,
    /// The gRPC method path, `/fangpin.v1.PayoutService/PayClaim`.
    pub rpc: String,
    /// The verified caller, for the handlers' scope checks; None when
    /// authentication is off (development) or for a health probe.
    pub principal: Option<Principal>,
}

tokio::task_local! {
    static CALLER: Caller;
}

/// The caller of the call this task is serving, if it came through
/// `CallerLayer` (every call the server serves does; code that calls `App`
/// directly does not).
pub fn current() -> Option<Caller> {
    CALLER.try_with(Caller::clone).ok()
}

/// Runs `future` as if it served a call from `caller`.
pub async fn scope<F: Future>(caller: Caller, future: F) -> F::Output {
    CALLER.scope(caller, future).await
}

impl Caller {
    /// The caller an admitted request runs as.
    fn admitted<B>(request: &http::Request<B>, admission: Admission) -> Caller {
        match admission {
            Admission::Principal(principal) => Caller {
                actor: principal.subject().to_string(),
                role: principal.role().as_str().to_string(),
                rpc: request.uri().path().to_string(),
                principal: Some(principal),
            },
            Admission::Unchecked | Admission::Health | Admission::Console => Caller::of(request),
        }
    }

    /// The caller of an HTTP/2 request without tokens: its path and the
    /// actor it claims.
    fn of<B>(request: &http::Request<B>) -> Caller {
        let actor = request
            .headers()
            .get(ACTOR_HEADER)
            .map(|value| String::from_utf8_lossy(value.as_bytes()))
            .filter(|actor| !actor.is_empty())
            .map_or_else(
                || UNAUTHENTICATED.to_string(),
                |actor| actor.chars().take(MAX_ACTOR_CHARS).collect(),
            );
        Caller {
            actor,
            role: String::new(),
            rpc: request.uri().path().to_string(),
            principal: None,
        }
    }
}

/// Admits or refuses each call (`Authenticator::admit`) and runs an
/// admitted one with its task-local [`Caller`].
#[derive(Clone)]
pub(crate) struct CallerLayer {
    pub(crate) authenticator: Arc<Authenticator>,
}

impl<S> tower_layer::Layer<S> for CallerLayer {
    type Service = WithCaller<S>;

    fn layer(&self, inner: S) -> WithCaller<S> {
        WithCaller {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// A service wrapped by `CallerLayer`.
#[derive(Clone)]
pub(crate) struct WithCaller<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for WithCaller<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = request.uri().path();
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|value| value.as_bytes());
        match self.authenticator.admit(method, authorization) {
            Ok(admission) => {
                let caller = Caller::admitted(&request, admission);
                Box::pin(CALLER.scope(caller, self.inner.call(request)))
            }
            Err(refusal) => {
                // Codes and names only: the reason never quotes the token.
                let status = match &refusal {
                    Refusal::Unauthenticated { reason } => {
                        tracing::info!(method, reason = %reason, "call refused: unauthenticated");
                        Status::unauthenticated(refusal.to_string())
                    }
                    Refusal::WrongRole { role, .. } => {
                        tracing::info!(method, role, "call refused: role not allowed");
                        Status::permission_denied(refusal.to_string())
                    }
                };
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(actor: Option<&[u8]>) -> http::Request<()> {
        let mut builder = http::Request::builder().uri("/fangpin.v1.PayoutService/PayClaim");
        if let Some(actor) = actor {
            builder = builder.header(
                ACTOR_HEADER,
                http::HeaderValue::from_bytes(actor).expect("header value"),
            );
        }
        builder.body(()).expect("request")
    }

    #[test]
    fn the_actor_is_the_header_or_unauthenticated() {
        let named = Caller::of(&request(Some(b"county-office-li")));
        assert_eq!(named.actor, "county-office-li");
        assert_eq!(named.role, "");
        assert_eq!(named.rpc, "/fangpin.v1.PayoutService/PayClaim");
        assert_eq!(Caller::of(&request(None)).actor, UNAUTHENTICATED);
        assert_eq!(Caller::of(&request(Some(b""))).actor, UNAUTHENTICATED);
        let long = vec![b'a'; 1000];
        assert_eq!(
            Caller::of(&request(Some(&long))).actor.len(),
            MAX_ACTOR_CHARS
        );
    }

    #[tokio::test]
    async fn the_caller_is_seen_inside_the_scope_only() {
        assert_eq!(current(), None);
        let caller = Caller::of(&request(None));
        let seen = scope(caller.clone(), async { current() }).await;
        assert_eq!(seen, Some(caller));
    }
}
