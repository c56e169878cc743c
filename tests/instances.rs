//! Three `kyso serve` processes on one PostgreSQL log, 64 clients, and one instance killed
//! (SIGKILL) under load: every answer a client received names a record that is in the log,
//! its receipt proves it, and the whole tree verifies. Ignored by a plain `cargo test`
//! (it needs PostgreSQL on 127.0.0.1:5432); `.ci/run` runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/stores.rs"]
mod stores;

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use kyso::audit::tree::{Proven, VerifierKey};
use kyso::service::convert;
use kyso::service::proto::verification_service_client::VerificationServiceClient;
use kyso::service::proto::{self as pb};
use stores::Backend;

const CLIENTS: usize = 64;
const INSTANCES: usize = 3;

/// `kyso serve` on the shared store, and its gRPC address.
fn serve(b: &Backend, data: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args([
            "serve",
            "--no-auth",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data)
        .args(["--audit-store", &b.url(), "--revocation", "offline"])
        .arg("--trust")
        .arg(pki("root-ca.pem"))
        .arg("--intermediates")
        .arg(pki("party-ca.pem"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.contains("postgres://127.0.0.1:5432"), "{banner}");
    assert!(
        !banner.contains("search_path"),
        "the banner shows no URL parameters: {banner}"
    );
    let addr = banner
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no address in {banner:?}"));
    (child, addr)
}

/// One received answer: the instance, the record id, the receipt, the document's hash.
type Received = (usize, u64, pb::Receipt, String);

// The database is reached with the blocking client, outside the clients' runtime.
#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (.ci/run starts it and runs this)"]
fn three_instances_share_one_log_and_a_killed_one_loses_no_answer() {
    let b = Backend::postgres();
    // Each instance its own data directory, the same checkpoint key.
    let dirs: Vec<std::path::PathBuf> = (0..INSTANCES)
        .map(|i| b.dir().join(format!("instance-{i}")))
        .collect();
    drop(b.key());
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
        std::fs::copy(b.dir().join("audit-key.pem"), d.join("audit-key.pem")).unwrap();
    }
    let mut servers: Vec<(std::process::Child, std::net::SocketAddr)> =
        dirs.iter().map(|d| serve(&b, d)).collect();
    let addrs: Vec<_> = servers.iter().map(|(_, a)| *a).collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let received = runtime.block_on(load(&mut servers, &addrs));
    let store = b.open();
    let key = kyso::audit::CheckpointKey::load(&b.dir().join("audit-key.pem")).unwrap();
    let origin = store.origin().unwrap().unwrap();
    let verifier: VerifierKey = kyso::audit::verifier_key(&origin, key.public_key()).unwrap();
    let mut ids: Vec<u64> = received.iter().map(|r| r.1).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), received.len(), "each answer its own record");
    for instance in 0..INSTANCES {
        assert!(
            received.iter().any(|r| r.0 == instance),
            "instance {instance} answered"
        );
    }
    for (instance, id, receipt, sha) in &received {
        let record = store
            .get(*id)
            .unwrap()
            .unwrap_or_else(|| panic!("record {id} (instance {instance}) is in the log"));
        assert_eq!(record.entry.document_sha256.as_deref(), Some(sha.as_str()));
        match convert::from_receipt(receipt).verify(&verifier) {
            Ok(Proven::Inclusion { leaf_index, .. }) => assert_eq!(leaf_index, id - 1),
            other => panic!("record {id}: {other:?}"),
        }
    }
    let check = kyso::audit::verify_log(store.as_ref(), key.public_key(), 0, None, &[]).unwrap();
    assert!(check.ok, "{}", check.problem);
    assert!(check.records_checked as usize >= received.len());

    // The auditor's commands on the shared store.
    let kyso = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
            .args(args)
            .args(["--audit-store", &b.url()])
            .arg("--data-dir")
            .arg(&dirs[1])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), text, err)
    };
    let (code, text, err) = kyso(&["audit", "verify"]);
    assert_eq!(code, Some(0), "{text}{err}");
    let (code, key_text, err) = kyso(&["audit", "public-key"]);
    assert_eq!(
        (code, key_text.trim()),
        (Some(0), verifier.as_str()),
        "{err}"
    );
    // A proof the auditor saved checks offline, with the verifier key alone.
    let checks_offline = |name: &str, proof: String| {
        let file = b.dir().join(name);
        std::fs::write(&file, proof).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
            .args(["audit", "verify-proof"])
            .arg(&file)
            .args(["--key", verifier.as_str()])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    let (code, proof, err) = kyso(&["audit", "prove", "--record", "1"]);
    assert_eq!(code, Some(0), "{err}");
    checks_offline("proof.json", proof);
    let (code, text, err) = kyso(&["audit", "checkpoint", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let latest: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(latest["tree_size"].as_u64().unwrap() >= received.len() as u64);
    let (code, proof, err) = kyso(&[
        "audit",
        "consistency",
        "--old-size",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    checks_offline("consistency.json", proof);
    let (code, text, err) = kyso(&[
        "audit",
        "query",
        "--document-number",
        "1/qđ-ubnd",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("1/QĐ-UBND"), "{text}");
}

/// 64 clients on the instances until the first is killed under load and the others have
/// answered 40 more; the survivors are then stopped. Every answer received.
async fn load(
    servers: &mut [(std::process::Child, std::net::SocketAddr)],
    addrs: &[std::net::SocketAddr],
) -> Vec<Received> {
    let doc = fixture("two-signatures.pdf");
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let from_first = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let instance = c % INSTANCES;
        let addr = addrs[instance];
        let (doc, received, from_first, stop) = (
            doc.clone(),
            received.clone(),
            from_first.clone(),
            stop.clone(),
        );
        clients.push(tokio::spawn(async move {
            let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut v = VerificationServiceClient::new(channel);
            while !stop.load(Ordering::Relaxed) {
                let request = pb::VerifyDocumentRequest {
                    document: doc.clone().into(),
                    metadata: Some(pb::CallerMetadata {
                        document_number: format!("{c}/QĐ-UBND"),
                        ..Default::default()
                    }),
                    options: None,
                };
                match v.verify_document(request).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        let id = r.audit_record_id.parse().unwrap();
                        let sha = r.report.map(|r| r.sha256).unwrap_or_default();
                        received.lock().unwrap().push((
                            instance,
                            id,
                            r.receipt.expect("a receipt"),
                            sha,
                        ));
                        if instance == 0 {
                            from_first.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // The killed instance's clients get errors and stop.
                    Err(_) => break,
                }
            }
        }));
    }
    // Kill the first instance once it has answered under load.
    while from_first.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    servers[0].0.kill().unwrap(); // SIGKILL: no drain, no shutdown
    servers[0].0.wait().unwrap();
    let after_kill = received.lock().unwrap().len();
    while received.lock().unwrap().len() < after_kill + 40 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    for (child, _) in servers.iter_mut().skip(1) {
        // SIGTERM: the survivors drain and stop.
        let _ = std::process::Command::new("kill")
            .arg(child.id().to_string())
            .status();
        child.wait().unwrap();
    }

    let received = received.lock().unwrap().clone();
    received
}
