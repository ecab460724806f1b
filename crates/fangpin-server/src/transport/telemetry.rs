//! Logs, traces and metrics.
//!
//! Logs are what they always were: the fmt subscriber on standard output,
//! filtered by `log.filter`, as text or JSON (`log.format`). Traces and
//! metrics are exported over OTLP/gRPC (tonic, the workspace's one tonic) and
//! are configured only by the standard `OTEL_*` environment variables, so
//! that the same settings work for every OpenTelemetry SDK in a deployment:
//!
//! - `OTEL_SDK_DISABLED=true`, or no `OTEL_EXPORTER_OTLP_ENDPOINT` /
//!   `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT`: nothing is exported,
//!   nothing is buffered, the logs are exactly as without OpenTelemetry.
//! - `OTEL_{TRACES,METRICS}_EXPORTER=none` turns one signal off.
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` may only be `grpc`: an HTTP collector
//!   port would silently receive nothing, so it is refused at start.
//! - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//!   (+ `_ARG`), `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`,
//!   `OTEL_EXPORTER_OTLP_{TIMEOUT,HEADERS,INSECURE}` are read by the SDK
//!   itself. The service name defaults to `fangpind`.
//!
//! Every RPC gets one span (`RpcLayer`) whose parent is the caller's span
//! when the call carries W3C `traceparent`/`tracestate` metadata; handlers
//! record the county, claim and request ids on it (`App::write`); every store
//! call is a child span. No span carries an ID number, a name or a bank
//! account: the store's spans skip all arguments and name only codes and
//! UUIDs.

use std::convert::Infallible;
use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fangpin_proto::tonic::codegen::{Service, http};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// `service.name` when neither `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const DEFAULT_SERVICE_NAME: &str = "fangpind";
/// The instrumentation scope of every span and instrument of fangpin.
pub const SCOPE: &str = "fangpin";
/// How long the exit may wait for the last spans and metrics to leave. Well
/// inside the time systemd, compose and Kubernetes give after the grace
/// period, so an unreachable collector never turns a clean stop into SIGKILL.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// The RPC latency histogram (milliseconds, by method and status code).
pub const RPC_DURATION: &str = "rpc.server.duration";

/// The attributes handlers record on the RPC span (declared empty on it).
pub const FIELD_COUNTY_CODE: &str = "fangpin.county_code";
pub const FIELD_CLAIM_ID: &str = "fangpin.claim_id";
pub const FIELD_REQUEST_ID: &str = "fangpin.request_id";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event; colour only on a terminal.
    Text,
    /// One JSON object per line, fields at the top level, for collectors.
    Json,
}

/// What the `OTEL_*` environment variables ask of fangpind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtelSettings {
    /// The OTLP/gRPC endpoint spans go to, if any.
    pub traces_endpoint: Option<String>,
    /// The OTLP/gRPC endpoint metrics go to, if any.
    pub metrics_endpoint: Option<String>,
    /// Whether the resource needs `service.name = fangpind` (none was given).
    pub default_service_name: bool,
}

impl OtelSettings {
    /// Reads the settings through `env` (the process environment in
    /// fangpind, a map in tests). Empty values count as unset, as the
    /// specification asks.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<OtelSettings, String> {
        let env = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(OtelSettings::default());
        }
        let named = env("OTEL_SERVICE_NAME").is_some()
            || env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|attributes| {
                attributes.split(',').any(|kv| {
                    kv.split_once('=')
                        .is_some_and(|(k, _)| k.trim() == "service.name")
                })
            });
        Ok(OtelSettings {
            traces_endpoint: signal_endpoint(&env, "TRACES")?,
            metrics_endpoint: signal_endpoint(&env, "METRICS")?,
            default_service_name: !named,
        })
    }

    pub fn exports_anything(&self) -> bool {
        self.traces_endpoint.is_some() || self.metrics_endpoint.is_some()
    }
}

/// The endpoint of one signal: the signal's own variable over the generic one.
fn signal_endpoint(
    env: &dyn Fn(&str) -> Option<String>,
    signal: &str,
) -> Result<Option<String>, String> {
    let exporter = format!("OTEL_{signal}_EXPORTER");
    match env(&exporter).as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(format!(
                "{exporter}={other}: fangpind exports only \"otlp\" (or \"none\")"
            ));
        }
    }
    let specific = format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL");
    let protocol = env(&specific).map(|p| (specific.clone(), p)).or_else(|| {
        env("OTEL_EXPORTER_OTLP_PROTOCOL").map(|p| ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), p))
    });
    if let Some((name, protocol)) = protocol
        && protocol != "grpc"
    {
        return Err(format!(
            "{name}={protocol}: fangpind exports OTLP over gRPC only (\"grpc\", port 4317)"
        ));
    }
    Ok(env(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))
        .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT")))
}

/// The installed exporters, flushed and shut down on exit.
#[must_use = "dropping Telemetry without shutdown() loses the last spans"]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl Telemetry {
    pub fn traces_exported(&self) -> bool {
        self.tracer_provider.is_some()
    }

    pub fn metrics_exported(&self) -> bool {
        self.meter_provider.is_some()
    }

    /// Exports every finished span and a collection of every metric now.
    /// Blocks until the exporters answer: call it from a thread that is not
    /// driving the Tokio runtime (`spawn_blocking`), which the exports need.
    pub fn force_flush(&self) -> anyhow::Result<()> {
        if let Some(provider) = &self.tracer_provider {
            provider.force_flush().context("flushing spans")?;
        }
        if let Some(provider) = &self.meter_provider {
            provider.force_flush().context("flushing metrics")?;
        }
        Ok(())
    }

    /// Exports what is buffered and stops the exporters, within
    /// `SHUTDOWN_TIMEOUT` each. Blocks like `force_flush`.
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer_provider
            && let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        {
            eprintln!("fangpind: exporting the last spans: {e}");
        }
        if let Some(provider) = self.meter_provider
            && let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        {
            eprintln!("fangpind: exporting the last metrics: {e}");
        }
    }
}

/// Installs the global subscriber (logs as `filter` and `format` say, plus
/// the OpenTelemetry layer when traces are exported), the W3C trace-context
/// propagator and, when metrics are exported, the global meter provider.
///
/// Call it once per process, inside the Tokio runtime (the OTLP channels
/// are created on it); a second call fails because a subscriber is set.
pub fn init(filter: &str, format: LogFormat, settings: &OtelSettings) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(filter).context("log filter")?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = resource(settings);
    let tracer_provider = match &settings.traces_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .with_context(|| format!("OTLP span exporter for {endpoint}"))?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource.clone())
                    .build(),
            )
        }
        None => None,
    };
    let meter_provider = match &settings.metrics_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .with_context(|| format!("OTLP metric exporter for {endpoint}"))?;
            let provider = SdkMeterProvider::builder()
                .with_periodic_exporter(exporter)
                .with_resource(resource)
                .build();
            opentelemetry::global::set_meter_provider(provider.clone());
            Some(provider)
        }
        None => None,
    };
    // The SDK tracer itself, not the global BoxedTracer: tracing-opentelemetry
    // needs the concrete type to link spans.
    let otel = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SCOPE))
            .with_filter(exported_spans())
    });
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(otel)
        .with(logs)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    Ok(Telemetry {
        tracer_provider,
        meter_provider,
    })
}

/// What the OpenTelemetry layer sees, independent of the log filter: fangpin's
/// own spans and events at INFO, anything else only at WARN, and never the
/// exporter's own transport (h2, hyper, tonic, tower) or the SDK, whose
/// spans would be exported by the very exporter they describe.
fn exported_spans() -> Targets {
    Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("fangpin_server", LevelFilter::INFO)
        .with_target("fangpin_store", LevelFilter::INFO)
        .with_target("fangpind", LevelFilter::INFO)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
        .with_target("h2", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("tonic", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
}

/// The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, the SDK's
/// own attributes) with fangpind's name when none was given, and its version.
fn resource(settings: &OtelSettings) -> Resource {
    let mut builder = Resource::builder();
    if settings.default_service_name {
        builder = builder.with_service_name(DEFAULT_SERVICE_NAME);
    }
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Reads W3C trace context from a call's HTTP/2 headers (its gRPC metadata).
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The tower layer on the gRPC server: one span and one latency measurement
/// per call. gRPC health and reflection are left out: probes every few
/// seconds would bury the calls that matter.
#[derive(Clone)]
pub(crate) struct RpcLayer {
    duration: Histogram<f64>,
}

impl RpcLayer {
    /// Uses the global meter provider: a no-op one unless `init` installed
    /// an exporter.
    pub(crate) fn new() -> RpcLayer {
        let meter = opentelemetry::global::meter(SCOPE);
        RpcLayer {
            duration: meter
                .f64_histogram(RPC_DURATION)
                .with_unit("ms")
                .with_description("Duration of gRPC calls served, by method and status code")
                .build(),
        }
    }
}

impl<S> tower_layer::Layer<S> for RpcLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service wrapped by `RpcLayer`.
#[derive(Clone)]
pub(crate) struct Traced<S> {
    inner: S,
    layer: RpcLayer,
}

/// gRPC codes that are the server's fault (OpenTelemetry's RPC conventions):
/// only these mark a server span as an error.
fn is_server_error(code: i64) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Traced<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
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
        let path = request.uri().path().trim_start_matches('/').to_string();
        let (service, method) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let (service, method) = (service.to_string(), method.to_string());
        // Health, reflection and the console's files are not the API.
        if service.starts_with("grpc.")
            || crate::transport::auth::is_console_path(request.uri().path())
        {
            return Box::pin(inner.call(request));
        }
        let span = tracing::info_span!(
            target: "fangpin_server::rpc",
            "rpc",
            otel.name = %path,
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = Empty,
            fangpin.county_code = Empty,
            fangpin.claim_id = Empty,
            fangpin.request_id = Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        // Fails only when no OpenTelemetry layer is installed: nothing to link.
        let _ = span.set_parent(parent);
        let mut finish = Finish {
            span: span.clone(),
            duration: self.layer.duration.clone(),
            started: Instant::now(),
            service,
            method,
            done: false,
        };
        let future = span.in_scope(|| inner.call(request));
        Box::pin(
            async move {
                let response = future.await;
                // A unary call that fails answers with headers only, the
                // status among them; a success puts status 0 in the trailers.
                let code = match &response {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0),
                    Err(never) => match *never {},
                };
                finish.finish(code);
                response
            }
            .instrument(span),
        )
    }
}

/// gRPC's CANCELLED: what a call dropped before it answered (the client
/// went away) is counted as.
const CANCELLED: i64 = 1;

/// Records a call's outcome on its span and in the latency histogram once,
/// also when the call's future is dropped before it answers.
struct Finish {
    span: tracing::Span,
    duration: Histogram<f64>,
    started: Instant,
    service: String,
    method: String,
    done: bool,
}

impl Finish {
    fn finish(&mut self, code: i64) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.span.record("rpc.grpc.status_code", code);
        if is_server_error(code) {
            self.span.record("otel.status_code", "ERROR");
        }
        // An unknown method is answered UNIMPLEMENTED; its path is the
        // client's invention and must not become a time series.
        let (service, method) = if code == 12 {
            ("_OTHER".to_string(), "_OTHER".to_string())
        } else {
            (self.service.clone(), self.method.clone())
        };
        self.duration.record(
            self.started.elapsed().as_secs_f64() * 1000.0,
            &[
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service),
                KeyValue::new("rpc.method", method),
                KeyValue::new("rpc.grpc.status_code", code),
            ],
        );
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.finish(CANCELLED);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<OtelSettings, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtelSettings::from_env(&|name| map.get(name).cloned())
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        let s = settings(&[("OTEL_SERVICE_NAME", "x")]).expect("valid");
        assert!(!s.exports_anything());
        assert!(!s.default_service_name);
    }

    #[test]
    fn the_generic_endpoint_serves_both_signals_and_signal_variables_win() {
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4317"),
        ])
        .expect("valid");
        assert_eq!(s.traces_endpoint.as_deref(), Some("http://collector:4317"));
        assert_eq!(s.metrics_endpoint.as_deref(), Some("http://metrics:4317"));
        assert!(s.default_service_name);
    }

    #[test]
    fn disabled_sdk_or_none_exporter_turns_export_off() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        let off = settings(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]).expect("valid");
        assert!(!off.exports_anything());
        let no_metrics = settings(&[endpoint, ("OTEL_METRICS_EXPORTER", "none")]).expect("valid");
        assert!(no_metrics.traces_endpoint.is_some());
        assert!(no_metrics.metrics_endpoint.is_none());
    }

    #[test]
    fn http_protocols_and_other_exporters_are_refused() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        let http = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        assert!(http.expect_err("refused").contains("gRPC only"));
        let zipkin = settings(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]);
        assert!(
            zipkin
                .expect_err("refused")
                .contains("OTEL_TRACES_EXPORTER")
        );
        let grpc = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert!(grpc.is_ok());
    }

    #[test]
    fn a_service_name_in_the_resource_attributes_counts() {
        let s = settings(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=prod, service.name=fangpind-hebei",
        )])
        .expect("valid");
        assert!(!s.default_service_name);
    }
}
