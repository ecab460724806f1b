//! Traces and metrics over OTLP: the real server in-process, exporting to an
//! in-process OTLP/gRPC receiver (the collector's own TraceService and
//! MetricsService from opentelemetry-proto). One claim goes from county
//! registration to payment; the first call carries a W3C `traceparent`.
//!
//! A global subscriber can be installed once per process, so this binary
//! holds exactly one test.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1 as pb;
use fangpin_server::transport::telemetry::{self, LogFormat, OtelSettings};
use fangpin_tests::flow::{COUNTY, INSURER, VILLAGE, filed_claim, pay, premium, put_policy};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;

/// What the receiver was sent.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    metrics: Arc<Mutex<Vec<Metric>>>,
    resources: Arc<Mutex<Vec<Vec<KeyValue>>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        for resource_spans in request.into_inner().resource_spans {
            if let Some(resource) = resource_spans.resource {
                self.resources
                    .lock()
                    .expect("lock")
                    .push(resource.attributes);
            }
            for scope in resource_spans.scope_spans {
                self.spans.lock().expect("lock").extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        for resource_metrics in request.into_inner().resource_metrics {
            for scope in resource_metrics.scope_metrics {
                self.metrics.lock().expect("lock").extend(scope.metrics);
            }
        }
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

/// Every string of a span a reader could see: name, attributes, events.
fn visible_text(span: &Span) -> Vec<String> {
    let mut all = vec![span.name.clone()];
    for kv in &span.attributes {
        all.push(kv.key.clone());
        all.push(text(&kv.value));
    }
    for event in &span.events {
        all.push(event.name.clone());
        for kv in &event.attributes {
            all.push(kv.key.clone());
            all.push(text(&kv.value));
        }
    }
    if let Some(status) = &span.status {
        all.push(status.message.clone());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_and_store_spans_and_gauges_arrive_over_otlp() {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let receiver = listener.local_addr().expect("receiver address");
    let (stop_receiver, stopped) = tokio::sync::oneshot::channel::<()>();
    let receiver_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .add_service(MetricsServiceServer::new(received.clone()))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let endpoint = format!("http://{receiver}");
    let settings = OtelSettings::from_env(&|name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
        _ => None,
    })
    .expect("valid settings");
    let telemetry =
        Arc::new(telemetry::init("warn", LogFormat::Text, &settings).expect("install telemetry"));
    assert!(telemetry.traces_exported() && telemetry.metrics_exported());

    let s = TestServer::start(date(2024, 1, 10)).await;
    // The caller's span: W3C trace context in the first call's metadata.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let register_id = request_id();
    let mut register = Request::new(pb::RegisterCountyRequest {
        request_id: register_id.clone(),
        county_code: COUNTY.into(),
        name: "涉县".into(),
        rural_population: 20_000,
        insurer: INSURER.into(),
    });
    register.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01")
            .parse()
            .expect("ASCII metadata"),
    );
    s.enrollment()
        .register_county(register)
        .await
        .expect("county");
    put_policy(&s, 2024).await;
    premium(&s, 2024, "100000.00").await.expect("premium");
    let (claim_id, account) = filed_claim(&s, 2024, VILLAGE, 1).await;
    pay(&s, &claim_id).await;

    // Export now rather than waiting for the batch and collection intervals.
    // Blocking, and the exports run on this runtime: off its workers.
    let flushing = telemetry.clone();
    tokio::task::spawn_blocking(move || flushing.force_flush())
        .await
        .expect("flush task")
        .expect("flush");

    let spans = received.spans.lock().expect("lock").clone();
    let rpcs: Vec<&Span> = spans
        .iter()
        .filter(|span| {
            attributes(&span.attributes)
                .get("rpc.system")
                .map(String::as_str)
                == Some("grpc")
        })
        .collect();
    let by_name = |name: &str| -> &Span {
        rpcs.iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no span for {name}; got {:?}",
                    rpcs.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
    };
    for name in [
        "fangpin.v1.EnrollmentService/RegisterCounty",
        "fangpin.v1.PolicyService/PutPolicy",
        "fangpin.v1.EnrollmentService/RecordPremium",
        "fangpin.v1.EnrollmentService/EnrollHousehold",
        "fangpin.v1.ClaimService/SubmitClaim",
        "fangpin.v1.SurveyService/AssignSurvey",
        "fangpin.v1.SurveyService/RecordFindings",
        "fangpin.v1.SurveyService/Recommend",
        "fangpin.v1.PublicityService/OpenPublicity",
        "fangpin.v1.PublicityService/ClosePublicity",
        "fangpin.v1.PayoutService/FileClaim",
        "fangpin.v1.PayoutService/PayClaim",
    ] {
        let span = by_name(name);
        let attrs = attributes(&span.attributes);
        let (service, method) = name.split_once('/').expect("service/method");
        assert_eq!(attrs.get("rpc.service").map(String::as_str), Some(service));
        assert_eq!(attrs.get("rpc.method").map(String::as_str), Some(method));
        assert_eq!(
            attrs.get("rpc.grpc.status_code").map(String::as_str),
            Some("0"),
            "{name}"
        );
        assert_eq!(
            attrs.get("fangpin.county_code").map(String::as_str),
            Some(COUNTY),
            "{name} names its county"
        );
        assert!(
            attrs
                .get("fangpin.request_id")
                .is_some_and(|id| id.len() == 36),
            "{name} names its request id"
        );
    }

    // The first call continues the caller's trace, under the caller's span.
    let first = by_name("fangpin.v1.EnrollmentService/RegisterCounty");
    assert_eq!(hex::encode(&first.trace_id), trace_id);
    assert_eq!(hex::encode(&first.parent_span_id), caller_span);
    assert_eq!(
        attributes(&first.attributes).get("fangpin.request_id"),
        Some(&register_id)
    );
    // The others start traces of their own.
    let paid = by_name("fangpin.v1.PayoutService/PayClaim");
    assert_ne!(hex::encode(&paid.trace_id), trace_id);
    assert!(paid.parent_span_id.is_empty());
    for name in [
        "fangpin.v1.SurveyService/AssignSurvey",
        "fangpin.v1.PayoutService/FileClaim",
        "fangpin.v1.PayoutService/PayClaim",
    ] {
        assert_eq!(
            attributes(&by_name(name).attributes).get("fangpin.claim_id"),
            Some(&claim_id),
            "{name} names its claim"
        );
    }

    // Store calls are children of the RPC that made them (or of a store call).
    let ids: HashMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();
    let rpc_ids: HashSet<&Vec<u8>> = rpcs.iter().map(|s| &s.span_id).collect();
    let store: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name.starts_with("store."))
        .collect();
    assert!(store.len() > rpcs.len(), "{} store spans", store.len());
    for span in &store {
        let mut parent = ids
            .get(&span.parent_span_id)
            .unwrap_or_else(|| panic!("{} has no exported parent", span.name));
        while !rpc_ids.contains(&parent.span_id) {
            assert!(
                parent.name.starts_with("store."),
                "{} under {}",
                span.name,
                parent.name
            );
            parent = ids
                .get(&parent.parent_span_id)
                .expect("exported grandparent");
        }
        assert_eq!(span.trace_id, parent.trace_id);
    }
    let under_pay: Vec<&str> = store
        .iter()
        .filter(|s| s.parent_span_id == paid.span_id)
        .map(|s| s.name.as_str())
        .collect();
    for expected in [
        "store.places.claim",
        "store.begin_write",
        "store.idempotency.find",
        "store.claims.get_claim",
        "store.ledger.append_entry",
        "store.claims.update_claim",
        "store.idempotency.record",
    ] {
        assert!(
            under_pay.contains(&expected),
            "PayClaim made no {expected}: {under_pay:?}"
        );
    }
    let first_trace: Vec<&str> = store
        .iter()
        .filter(|s| s.parent_span_id == first.span_id)
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        first_trace.contains(&"store.counties.insert_county"),
        "{first_trace:?}"
    );

    // No ID number, name or bank account anywhere in a span.
    let id_number = resident_id("19650101", 1);
    let secrets = [id_number.as_str(), account.as_str(), "户主1"];
    for span in &spans {
        for text in visible_text(span) {
            for secret in secrets {
                assert!(
                    !text.contains(secret),
                    "span {} shows {secret:?}: {text:?}",
                    span.name
                );
            }
        }
    }
    let resources = received.resources.lock().expect("lock").clone();
    assert!(resources.iter().all(|r| {
        attributes(r).get("service.name").map(String::as_str)
            == Some(telemetry::DEFAULT_SERVICE_NAME)
    }));

    // Metrics: the latency histogram and the gauges read from the database.
    let metrics = received.metrics.lock().expect("lock").clone();
    let named =
        |name: &str| -> Vec<&Metric> { metrics.iter().filter(|m| m.name == name).collect() };
    let durations = named(telemetry::RPC_DURATION);
    assert!(!durations.is_empty(), "no {}", telemetry::RPC_DURATION);
    let pay_calls: u64 = durations
        .iter()
        .filter_map(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => Some(h),
            _ => None,
        })
        .flat_map(|h| &h.data_points)
        .filter(|p| {
            let a = attributes(&p.attributes);
            a.get("rpc.method").map(String::as_str) == Some("PayClaim")
                && a.get("rpc.grpc.status_code").map(String::as_str) == Some("0")
        })
        .map(|p| p.count)
        .max()
        .unwrap_or(0);
    assert_eq!(pay_calls, 1);

    let gauge = |name: &str, want: &[(&str, &str)]| -> Option<i64> {
        named(name)
            .iter()
            .filter_map(|m| match &m.data {
                Some(metric::Data::Gauge(g)) => Some(g),
                _ => None,
            })
            .flat_map(|g| &g.data_points)
            .filter(|p| {
                let a = attributes(&p.attributes);
                want.iter()
                    .all(|(k, v)| a.get(*k).map(String::as_str) == Some(*v))
            })
            .filter_map(|p| match p.value {
                Some(number_data_point::Value::AsInt(v)) => Some(v),
                _ => None,
            })
            .next_back()
    };
    let county_year = [
        ("fangpin.county_code", COUNTY),
        ("fangpin.policy_year", "2024"),
    ];
    // 100,000.00 of premium less the relief of 61,750.00, in fen.
    assert_eq!(gauge("fangpin.pool.balance", &county_year), Some(3_825_000));
    assert_eq!(
        gauge("fangpin.pool.available", &county_year),
        Some(3_825_000)
    );
    assert_eq!(gauge("fangpin.relief.paid", &county_year), Some(6_175_000));
    assert_eq!(
        gauge(
            "fangpin.claims",
            &[
                ("fangpin.county_code", COUNTY),
                ("fangpin.claim_state", "paid")
            ]
        ),
        Some(1)
    );
    // No flag was ever raised, so the gauge has no point for the county.
    assert_eq!(gauge("fangpin.top_up_flags.open", &county_year), None);
    // The only claim is paid on time: every stage reports zero overdue.
    for stage in [
        "survey",
        "filing",
        "payout",
        "follow_up_visit",
        "monitoring_list",
    ] {
        assert_eq!(
            gauge(
                "fangpin.deadlines.overdue",
                &[("fangpin.county_code", COUNTY), ("fangpin.stage", stage)]
            ),
            Some(0),
            "{stage}"
        );
    }

    s.stop().await;
    let _ = stop_receiver.send(());
    receiver_task
        .await
        .expect("receiver task")
        .expect("receiver served");
}
