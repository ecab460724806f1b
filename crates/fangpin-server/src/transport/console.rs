//! The web console's files (console/, docs/console.md), served on the API's
//! own port beside the gRPC services. The browser calls those services
//! through gRPC-Web (`tonic_web::GrpcWebLayer`) with the same bearer tokens,
//! so the role × RPC matrix and the scope checks apply to the console
//! unchanged: these files hold no data, and everything they show comes
//! through an RPC that asks for a token.
//!
//! The built files are embedded in the binary (no CDN, no internet, no
//! folder to deploy): console/dist is committed, and CI rebuilds it from
//! source and fails when it differs.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use fangpin_proto::tonic::body::Body;
use fangpin_proto::tonic::codegen::{Body as HttpBody, Service, http};

/// The console's page, script and style sheet, as built (`npm run build`).
const INDEX_HTML: &[u8] = include_bytes!("../../../../console/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../../../console/dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../../../console/dist/app.css");

/// How the console signs its user in, as `/console/config.json` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignIn {
    /// Development mode without `[auth]`: no sign-in, as for the gRPC API.
    Development,
    /// The county's OpenID Connect provider: authorization code with PKCE,
    /// a public client. The provider is `[auth] issuer` (the tokens it
    /// issues are what the server verifies) and the resource asked for is
    /// `[auth] audience`.
    Oidc {
        issuer: String,
        client_id: String,
        scope: String,
        resource: String,
    },
    /// Tokens are required but no console client is configured
    /// (`[console] oidc_client_id`): the console can only say so.
    NotConfigured,
}

impl SignIn {
    fn config_json(&self) -> serde_json::Value {
        match self {
            SignIn::Development => serde_json::json!({ "auth": "development" }),
            SignIn::Oidc {
                issuer,
                client_id,
                scope,
                resource,
            } => serde_json::json!({
                "auth": "oidc",
                "issuer": issuer,
                "client_id": client_id,
                "scope": scope,
                "resource": resource,
            }),
            SignIn::NotConfigured => serde_json::json!({
                "auth": "not_configured",
                "message": "本服务要求令牌，但未配置控制台登录（[console] oidc_client_id）",
            }),
        }
    }

    /// The Content-Security-Policy of every console response: our own
    /// files only, and fetches to ourselves and to the provider (its
    /// discovery document, JWK set and token endpoint).
    fn content_security_policy(&self) -> String {
        let provider = match self {
            SignIn::Oidc { issuer, .. } => format!(" {}", origin_of(issuer)),
            SignIn::Development | SignIn::NotConfigured => String::new(),
        };
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'{provider}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    }
}

/// `https://login.example.cn/realms/x` → `https://login.example.cn`: CSP
/// sources are origins (a path would also do, but the provider's endpoints
/// need not lie under its issuer path).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

/// The console's routes: `/` and `/console` lead to `/console/`, which is
/// the page; the script, the style sheet and the sign-in configuration
/// beside it. Anything else under `/console/` is 404.
pub fn router(sign_in: SignIn) -> Router {
    let config = serde_json::to_vec(&sign_in.config_json()).expect("JSON of strings");
    let csp = HeaderValue::from_str(&sign_in.content_security_policy())
        .expect("the policy is ASCII: an issuer URL with other bytes is refused at start-up");
    let file = move |bytes: &'static [u8], content_type: &'static str| {
        let csp = csp.clone();
        move || {
            let csp = csp.clone();
            async move { respond(bytes.to_vec(), content_type, csp) }
        }
    };
    let csp_for_config =
        HeaderValue::from_str(&sign_in.content_security_policy()).expect("checked above");
    let csp_for_missing = csp_for_config.clone();
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/",
            get(file(INDEX_HTML, "text/html; charset=utf-8")),
        )
        .route(
            "/console/app.js",
            get(file(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/console/app.css",
            get(file(APP_CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/console/config.json",
            get(move || {
                let (config, csp) = (config.clone(), csp_for_config.clone());
                async move { respond(config, "application/json", csp) }
            }),
        )
        .route(
            "/console/{*rest}",
            get(move || {
                let csp = csp_for_missing.clone();
                async move {
                    let mut response =
                        respond(b"not found".to_vec(), "text/plain; charset=utf-8", csp);
                    *response.status_mut() = StatusCode::NOT_FOUND;
                    response
                }
            }),
        )
}

fn respond(body: Vec<u8>, content_type: &'static str, csp: HeaderValue) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The names carry no hash, so the browser asks again each time (and a
    // new release is seen at the next load).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The sign-in code arrives in the page's URL: never send it on.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// gRPC-Web for the API, and the console's files as they are. tonic-web
/// answers 400 to any HTTP/1.1 request that is not gRPC-Web, which is every
/// page load of a browser, so the console's paths go around it; everything
/// else goes through it, and is plain gRPC to every layer inside.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcWebOrConsoleLayer;

impl<S: Clone> tower_layer::Layer<S> for GrpcWebOrConsoleLayer {
    type Service = GrpcWebOrConsole<S>;

    fn layer(&self, inner: S) -> GrpcWebOrConsole<S> {
        GrpcWebOrConsole {
            web: tower_layer::Layer::layer(&tonic_web::GrpcWebLayer::new(), inner.clone()),
            plain: inner,
        }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcWebOrConsole<S> {
    web: tonic_web::GrpcWebService<S>,
    plain: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcWebOrConsole<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: HttpBody<Data = bytes::Bytes> + Send + 'static,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display,
    ResBody: HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both wrap clones of one router, which is always ready.
        match Service::<http::Request<ReqBody>>::poll_ready(&mut self.web, cx) {
            Poll::Ready(Ok(())) => Service::<http::Request<Body>>::poll_ready(&mut self.plain, cx),
            other => other,
        }
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if crate::transport::auth::is_console_path(request.uri().path()) {
            let future = self.plain.call(request.map(Body::new));
            Box::pin(async move { Ok(future.await?.map(Body::new)) })
        } else {
            Box::pin(self.web.call(request))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_console_is_embedded() {
        let index = std::str::from_utf8(INDEX_HTML).expect("UTF-8");
        assert!(index.contains("lang=\"zh-CN\""), "{index}");
        assert!(index.contains("/console/app.js"), "{index}");
        assert!(!APP_JS.is_empty() && !APP_CSS.is_empty());
    }

    #[test]
    fn the_policy_names_the_provider_origin_only() {
        let oidc = SignIn::Oidc {
            issuer: "https://login.example.cn/realms/130421".to_string(),
            client_id: "fangpin-console".to_string(),
            scope: "openid".to_string(),
            resource: "fangpin".to_string(),
        };
        let csp = oidc.content_security_policy();
        assert!(
            csp.contains("connect-src 'self' https://login.example.cn;"),
            "{csp}"
        );
        assert!(
            !SignIn::Development
                .content_security_policy()
                .contains("http")
        );
        assert_eq!(origin_of("http://127.0.0.1:4000"), "http://127.0.0.1:4000");
    }

    #[test]
    fn the_configuration_says_how_to_sign_in() {
        assert_eq!(
            SignIn::Development.config_json(),
            serde_json::json!({"auth": "development"})
        );
        let oidc = SignIn::Oidc {
            issuer: "http://127.0.0.1:4000".to_string(),
            client_id: "fangpin-console".to_string(),
            scope: "openid".to_string(),
            resource: "fangpin".to_string(),
        }
        .config_json();
        assert_eq!(oidc["auth"], "oidc");
        assert_eq!(oidc["client_id"], "fangpin-console");
        assert_eq!(oidc["resource"], "fangpin");
        assert_eq!(
            SignIn::NotConfigured.config_json()["auth"],
            "not_configured"
        );
    }
}
