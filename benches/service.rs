//! `cargo bench --bench service`: the gRPC and HTTP service under load, durable audit on.
//!
//! The floor first: the verifications called in-process on as many threads as the machine
//! has cores, with no service and no audit. Then, in [`ROUNDS`] interleaved rounds of
//! [`ROUND`] each, so that the disk's and the machine's drift falls on all alike, three
//! loads of 32 concurrent clients (async tasks on one runtime, each on its own connection)
//! sending the ~100 KB two-signature document:
//!
//! - `VerifyDocument` over gRPC (tonic clients) to the server whose log has the tree;
//! - the same to a second server whose log keeps the hash chain alone (`ChainOnly`, the
//!   log as it was before the tree, giving no receipts);
//! - `POST /api/v1/verify` over HTTP/1.1 keep-alive (hyper clients) to the first server.
//!
//! It prints each round and the totals: requests per second, latency percentiles, HTTP as
//! a share of gRPC, and the tree's server as a share of the chain-only one. Then audit
//! appends alone: 64 concurrent writers through group commit, against one record per
//! transaction in the same run.
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
/// How long the floor and the audit loads run.
const RUN: Duration = Duration::from_secs(5);
/// The interleaved rounds of the service loads, and how long each load runs in a round.
const ROUNDS: usize = 4;
const ROUND: Duration = Duration::from_secs(3);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `CLIENTS` tonic clients, each on its own connection, sending `doc` to `addr` for
/// `ROUND`: requests per second and every latency.
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
            while start.elapsed() < ROUND {
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

/// `CLIENTS` hyper clients, each on its own HTTP/1.1 keep-alive connection, posting `doc`
/// to `POST /api/v1/verify` at `addr` for `ROUND`: requests per second and every latency.
async fn http_load(addr: std::net::SocketAddr, doc: bytes::Bytes) -> (f64, Vec<Duration>) {
    use http_body_util::{BodyExt, Full};
    let url: hyper::Uri = format!("http://{addr}/api/v1/verify").parse().unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (url, doc) = (url.clone(), doc.clone());
        tasks.push(tokio::spawn(async move {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_max_idle_per_host(1)
                    .build_http::<Full<bytes::Bytes>>();
            let mut times = Vec::new();
            while start.elapsed() < ROUND {
                let t = Instant::now();
                let request = hyper::Request::post(url.clone())
                    .header("content-type", "application/pdf")
                    .body(Full::new(doc.clone()))
                    .unwrap();
                let response = client.request(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert!(body.windows(17).any(|w| w == b"\"audit_record_id\""));
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

/// One load's figures over the rounds.
#[derive(Default)]
struct Load {
    requests: usize,
    seconds: f64,
    rounds: Vec<f64>,
    latencies: Vec<Duration>,
}

impl Load {
    fn add(&mut self, (rps, latencies): (f64, Vec<Duration>)) {
        self.requests += latencies.len();
        self.seconds += latencies.len() as f64 / rps;
        self.rounds.push(rps);
        self.latencies.extend(latencies);
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn line(&mut self, what: &str) -> String {
        self.latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "{what}: {:.0} requests/s (rounds: {}), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} requests",
            self.rps(),
            self.rounds
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            ms(percentile(&self.latencies, 0.5)),
            ms(percentile(&self.latencies, 0.99)),
            ms(*self.latencies.last().unwrap()),
            self.requests
        )
    }
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
    // A second server whose log has no tree (and so gives no receipts).
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
    let (mut grpc, mut chain, mut http) = (Load::default(), Load::default(), Load::default());
    for round in 1..=ROUNDS {
        grpc.add(rt.block_on(grpc_load(server.addr, doc.clone())));
        chain.add(rt.block_on(grpc_load(chain_server.addr, doc.clone())));
        http.add(rt.block_on(http_load(server.http_addr, doc.clone())));
        println!(
            "round {round}: gRPC {:.0}, gRPC without the tree {:.0}, HTTP {:.0} requests/s",
            grpc.rounds[round - 1],
            chain.rounds[round - 1],
            http.rounds[round - 1]
        );
    }
    rt.block_on(chain_server.stop()).unwrap();
    rt.block_on(server.stop()).unwrap();
    println!(
        "{} ({:.0} % of the floor)",
        grpc.line(&format!(
            "service: {CLIENTS} clients, VerifyDocument over gRPC with durable audit"
        )),
        100.0 * grpc.rps() / floor
    );
    println!(
        "{}; with the tree and a receipt per answer: {:.0} % of that",
        chain.line("service: the same on a log without the tree (no receipts)"),
        100.0 * grpc.rps() / chain.rps()
    );
    println!(
        "{} ({:.0} % of gRPC's over the same rounds)",
        http.line(&format!(
            "service: {CLIENTS} clients, POST /api/v1/verify with durable audit"
        )),
        100.0 * http.rps() / grpc.rps()
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
