//! `cargo bench --bench service`: the gRPC service under load, with durable audit on.
//!
//! 32 concurrent clients (real tonic clients, each on its own connection) send
//! `VerifyDocument` with the ~100 KB two-signature document for a fixed time; the bench
//! prints requests per second and the latency percentiles. The floor, measured in the same
//! run: the same verifications called in-process on as many threads as the machine has
//! cores, with no gRPC and no audit. Then audit appends alone: 64 concurrent writers
//! through group commit, against one record per transaction in the same run.
//!
//! Then the same gRPC load on a second server whose audit log keeps the hash chain alone,
//! without the Merkle tree and its receipts (`ChainOnly`, the log as it was before it), in
//! the same run. Then the same documents to the first server over HTTP
//! (`POST /api/v1/verify`, 32 clients on their own keep-alive connections), as a share of
//! gRPC's requests/s.
//!
//! Targets (issue "The gRPC service"): ≥ 1,000 requests/s with p99 < 50 ms; ≥ 20,000
//! audit appends/s; HTTP ≥ 90 % of gRPC's requests/s (issue 17); with the tree ≥ 90 % of
//! the requests/s without it (issue 14).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "chain_only.rs"]
mod chain_only;
#[path = "../certs-test/fixture.rs"]
mod fixture;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kyso::audit::{AuditLog, CheckpointKey, Entry, Metadata};
use kyso::service::config::Config;
use kyso::service::proto as pb;
use kyso::service::proto::verification_service_client::VerificationServiceClient;

const CLIENTS: usize = 32;
const RUN: Duration = Duration::from_secs(5);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `CLIENTS` tonic clients, each on its own connection, sending `doc` to `addr` for `RUN`:
/// requests per second and every latency.
async fn grpc_load(addr: std::net::SocketAddr, doc: bytes::Bytes) -> (f64, Vec<Duration>) {
    let url = format!("http://{addr}");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (url, doc) = (url.clone(), doc.clone());
        tasks.push(tokio::spawn(async move {
            let channel = tonic::transport::Channel::from_shared(url)
                .unwrap()
                .initial_stream_window_size(Some(4 << 20))
                .initial_connection_window_size(Some(16 << 20))
                .connect()
                .await
                .unwrap();
            let mut client = VerificationServiceClient::new(channel);
            let mut times = Vec::new();
            while start.elapsed() < RUN {
                let t = Instant::now();
                let r = client
                    .verify_document(pb::VerifyDocumentRequest {
                        document: doc.clone(),
                        metadata: None,
                        options: None,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert!(!r.audit_record_id.is_empty());
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all.len() as f64 / start.elapsed().as_secs_f64(), all)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pki = root.join("certs-test/pki");
    let doc = bytes::Bytes::from(fixture::two_signature_document(&pki, 80_000));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // Floor: in-process verification on every core, no gRPC, no audit.
    let trust = kyso::trust::TrustStore::from_paths(
        &[pki.join("root-ca.pem")],
        &[pki.join("party-ca.pem")],
    )
    .unwrap();
    let ctx = Arc::new(kyso::Context::new(trust));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let start = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                let (doc, ctx) = (doc.clone(), ctx.clone());
                s.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < RUN {
                        assert_eq!(
                            kyso::verify(
                                &doc,
                                &ctx,
                                kyso::Inputs::at(time::macros::datetime!(2026-11-23 00:00:00 UTC))
                            )
                            .unwrap()
                            .verdict,
                            kyso::Verdict::Valid
                        );
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let floor = done as f64 / start.elapsed().as_secs_f64();
    println!(
        "floor: in-process verify on {cores} threads: {floor:.0} documents/s ({} bytes each)",
        doc.len()
    );

    // The service, durable audit on.
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        trust: vec![pki.join("root-ca.pem")],
        intermediates: vec![pki.join("party-ca.pem")],
        revocation: kyso::verify::RevocationMode::Offline,
        no_auth: true,
        max_concurrent_verifications: std::env::var("PERMITS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        ..Config::default()
    };
    let server = rt.block_on(kyso::service::start(config.clone())).unwrap();
    let http_url = format!("http://{}/api/v1/verify", server.http_addr);
    let (rps, latencies) = rt.block_on(grpc_load(server.addr, doc.clone()));
    let mut sorted = latencies;
    sorted.sort();
    println!(
        "service: {CLIENTS} clients, VerifyDocument with durable audit: {rps:.0} requests/s ({:.0} % of the floor), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} requests",
        100.0 * rps / floor,
        percentile(&sorted, 0.5).as_secs_f64() * 1e3,
        percentile(&sorted, 0.99).as_secs_f64() * 1e3,
        sorted.last().unwrap().as_secs_f64() * 1e3,
        sorted.len()
    );

    // The same load on a server whose log has no tree (and so gives no receipts), in the
    // same run.
    let chain_dir = tempfile::tempdir().unwrap();
    let chain_config = Config {
        data_dir: chain_dir.path().to_owned(),
        ..config.clone()
    };
    let chain_log = AuditLog::start(
        Arc::new(chain_only::ChainOnly::open(
            &chain_dir.path().join("chain.sqlite3"),
        )),
        CheckpointKey::load_or_create(&chain_dir.path().join("audit-key.pem")).unwrap(),
        Some("kyso.bench/chain"),
    )
    .unwrap();
    let chain_server = rt
        .block_on(kyso::service::start_with_audit(chain_config, chain_log))
        .unwrap();
    let (chain_rps, _) = rt.block_on(grpc_load(chain_server.addr, doc.clone()));
    rt.block_on(chain_server.stop()).unwrap();
    println!(
        "service: the same load on a log without the tree (no receipts): {chain_rps:.0} requests/s; with the tree and a receipt per answer: {:.0} % of that",
        100.0 * rps / chain_rps
    );

    // The same over HTTP: POST /api/v1/verify from 32 clients, each on its own HTTP/1.1
    // keep-alive connection (blocking ureq agents on their own threads), same server.
    let start = Instant::now();
    let mut http_times: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (url, doc) = (http_url.clone(), doc.clone());
                s.spawn(move || {
                    let agent = ureq::Agent::config_builder()
                        .max_idle_connections_per_host(1)
                        .build()
                        .new_agent();
                    let mut times = Vec::new();
                    while start.elapsed() < RUN {
                        let t = Instant::now();
                        let mut r = agent
                            .post(&url)
                            .header("content-type", "application/pdf")
                            .send(&doc[..])
                            .unwrap();
                        let body = r.body_mut().read_to_string().unwrap();
                        assert!(body.contains("\"audit_record_id\""));
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let http_rps = http_times.len() as f64 / start.elapsed().as_secs_f64();
    rt.block_on(server.stop()).unwrap();
    http_times.sort();
    println!(
        "service: {CLIENTS} clients, POST /api/v1/verify with durable audit: {http_rps:.0} requests/s ({:.0} % of gRPC's in the same run), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} requests",
        100.0 * http_rps / rps,
        percentile(&http_times, 0.5).as_secs_f64() * 1e3,
        percentile(&http_times, 0.99).as_secs_f64() * 1e3,
        http_times.last().unwrap().as_secs_f64() * 1e3,
        http_times.len()
    );

    // Audit appends alone.
    let entry = Entry {
        time: time::OffsetDateTime::now_utc(),
        principal: "bench".into(),
        peer: "127.0.0.1:1".into(),
        method: "/kyso.v1.VerificationService/VerifyDocument".into(),
        document_sha256: Some("ab".repeat(32)),
        document_size: Some(100_000),
        metadata: Metadata {
            document_number: "494-BC/TU".into(),
            ..Metadata::default()
        },
        signatures: Vec::new(),
        verdict: "VALID".into(),
        error: None,
        kyso_version: "bench".into(),
        trust_fingerprint: "cd".repeat(32),
        policy: None,
    };
    let open = |dir: &Path| {
        let store = kyso::audit::sqlite::SqliteStore::open(&dir.join("audit.sqlite3")).unwrap();
        let key = CheckpointKey::load_or_create(&dir.join("audit-key.pem")).unwrap();
        Arc::new(AuditLog::start(Arc::new(store), key, None).unwrap())
    };
    let one_dir = tempfile::tempdir().unwrap();
    let log = open(one_dir.path());
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(2) {
        log.append_blocking(entry.clone()).unwrap();
        n += 1;
    }
    let single = n as f64 / start.elapsed().as_secs_f64();
    log.close();
    println!("audit floor: one record per transaction: {single:.0} appends/s");

    let group_dir = tempfile::tempdir().unwrap();
    let log = open(group_dir.path());
    let appended = rt.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (log, entry) = (log.clone(), entry.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < RUN {
                    log.append(entry.clone()).await.unwrap();
                    n += 1;
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total as f64 / start.elapsed().as_secs_f64()
    });
    log.close();
    let check = kyso::audit::verify_log(log.store().as_ref(), log.key().public_key(), 0, None, &[])
        .unwrap();
    assert!(check.ok, "{}", check.problem);
    println!(
        "audit: 64 concurrent writers, group commit: {appended:.0} appends/s ({:.0}× one per transaction); chain of {} records verifies",
        appended / single,
        check.records_checked
    );
}
