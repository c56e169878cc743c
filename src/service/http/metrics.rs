//! `GET /metrics`: the process's metrics in Prometheus text, from the `metrics` recorder
//! `kyso serve` installs once per process (metrics-exporter-prometheus).
//!
//! What is counted: requests by method (gRPC method or HTTP route) and status, their
//! duration; verification time, verdicts, policy outcomes; audit commit time and batch size;
//! work waiting for and running on the verification workers; lookups in the certificate
//! caches by hit or miss (their ratio is the hit ratio).

use std::sync::OnceLock;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of the durations, in seconds: 0.5 ms to 30 s.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of the audit batch sizes, in records.
const RECORDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed at the first call; `None` when the
/// embedder has installed another recorder first (its own exporter then serves them).
pub(in crate::service) fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("kyso_audit_batch_records".into()),
                        RECORDS,
                    )
                })
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Drains the histograms into their buckets now and then, as the exporter asks.
pub(in crate::service) async fn upkeep() {
    let Some(handle) = handle() else { return };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// The process's metrics, in Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain; version=0.0.4")
))]
pub(super) async fn metrics() -> Response {
    match handle() {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics go to the recorder this process installed, not to kyso's\n",
        )
            .into_response(),
    }
}
