//! Per-call time limits. tonic's server-wide timeout would cut a feed import
//! of gigabytes after the same 30 seconds as a claim lookup, so calls are
//! limited here instead: every call gets the configured request timeout,
//! except the streaming import, which gets `STREAMING_IMPORT_LIMIT` (and an
//! idle limit between its messages, in the handler). A client's own
//! `grpc-timeout` still applies on top, through tonic. A request message over
//! the size limit is answered RESOURCE_EXHAUSTED here as well.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use fangpin_proto::tonic::Status;
use fangpin_proto::tonic::codegen::{Service, http};

/// The longest a feed import may stream: a province's monthly file of a few
/// GiB over a county office's line.
pub const STREAMING_IMPORT_LIMIT: Duration = Duration::from_secs(2 * 60 * 60);

/// Calls that stream a file, and so are limited by `STREAMING_IMPORT_LIMIT`.
const STREAMING_CALLS: [&str; 2] = [
    "/fangpin.v1.ScreeningService/ImportFeed",
    "/fangpin.v1.EnrollmentService/ImportRoster",
];

#[derive(Clone, Copy, Debug)]
pub struct CallDeadline {
    pub request: Duration,
}

impl CallDeadline {
    fn limit_for(&self, path: &str) -> Duration {
        if STREAMING_CALLS.contains(&path) {
            STREAMING_IMPORT_LIMIT
        } else {
            self.request
        }
    }
}

impl<S> tower_layer::Layer<S> for CallDeadline {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            limits: *self,
        }
    }
}

#[derive(Clone)]
pub struct Limited<S> {
    inner: S,
    limits: CallDeadline,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Limited<S>
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
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.limits.limit_for(request.uri().path());
        Box::pin(async move {
            // Dropping the handler on expiry rolls its transaction back, as a
            // client's own deadline would.
            match tokio::time::timeout(limit, inner.call(request)).await {
                Ok(Ok(response)) => Ok(resource_exhausted_for_size(response)),
                Ok(Err(never)) => match never {},
                Err(_) => Ok(Status::cancelled("Timeout expired").into_http()),
            }
        })
    }
}

/// tonic answers a request message over the size limit with OUT_OF_RANGE;
/// gRPC names that RESOURCE_EXHAUSTED (the client sent more than the server
/// takes), and clients retry on neither. The refusal is a headers-only
/// response, so its status is rewritten here, message kept.
fn resource_exhausted_for_size<B>(mut response: http::Response<B>) -> http::Response<B> {
    const TOO_LARGE: &str = "Error, decoded message length too large";
    let headers = response.headers_mut();
    let too_large = headers.get("grpc-status").is_some_and(|v| v == "11")
        && headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| m.replace("%20", " ").starts_with(TOO_LARGE));
    if too_large {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_import_gets_the_long_limit() {
        let d = CallDeadline {
            request: Duration::from_secs(30),
        };
        assert_eq!(
            d.limit_for("/fangpin.v1.ScreeningService/ImportFeed"),
            STREAMING_IMPORT_LIMIT
        );
        assert_eq!(
            d.limit_for("/fangpin.v1.ClaimService/SubmitClaim"),
            Duration::from_secs(30)
        );
    }
}
