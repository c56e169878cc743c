//! `cargo bench --bench audit`: the audit log with its Merkle tree.
//!
//! - Group-commit appends, tree and checkpoint included, from 64 writers (async tasks, as the
//!   service's calls) for 5 s, on SQLite
//!   and (when it answers on 127.0.0.1:5432, or `KYSO_TEST_POSTGRES`) on PostgreSQL,
//!   against the floors issue 14 sets: 20,000 records/s on SQLite, 10,000 on PostgreSQL.
//! - What one checkpoint's signature costs (the signer every commit uses).
//! - Inclusion proofs in a log of 1,000,000 records: latency of 1,000 proofs of random
//!   records, against 1 ms, and how many stored hashes each reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "chain_only.rs"]
mod chain_only;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kyso::audit::tree::{NoteSigner, TreeHead};
use kyso::audit::{AuditLog, CheckpointKey, Entry, Location, Metadata};

const RUN: Duration = Duration::from_secs(5);
const WRITERS: usize = 64;

fn entry(n: u64) -> Entry {
    Entry {
        time: time::OffsetDateTime::now_utc(),
        principal: "bench".into(),
        peer: "127.0.0.1:1".into(),
        method: "/kyso.v1.VerificationService/VerifyDocument".into(),
        document_sha256: Some(format!("{n:064x}")),
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
    }
}

/// Records/s of `WRITERS` tasks appending through group commit for `RUN`, as the service's
/// calls do (async tasks on a runtime, each waiting for its record's commit).
fn group_commit(log: &Arc<AuditLog>) -> (f64, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let start = Instant::now();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while start.elapsed() < RUN {
                        log.append(entry(w as u64 * 1_000_000 + n)).await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for w in writers {
            total += w.await.unwrap();
        }
        (total as f64 / start.elapsed().as_secs_f64(), total)
    })
}

fn report(store: &str, log: &Arc<AuditLog>, floor: f64) -> f64 {
    let (rate, total) = group_commit(log);
    log.close();
    let check = kyso::audit::verify_log(log.store().as_ref(), log.key().public_key(), 0, None, &[])
        .unwrap();
    assert!(check.ok, "{}", check.problem);
    let verdict = if rate >= floor { "meets" } else { "BELOW" };
    println!(
        "audit append, {store}: {WRITERS} writers, group commit with tree and checkpoint: {rate:.0} records/s, {verdict} the floor of {floor:.0} ({total} records; {} checkpoints signed, the log verifies)",
        check.checkpoints_checked
    );
    rate
}

fn postgres_server() -> String {
    std::env::var("KYSO_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn main() {
    let dir = tempfile::tempdir().unwrap();

    // What one checkpoint costs to sign.
    let key = CheckpointKey::load_or_create(&dir.path().join("audit-key.pem")).unwrap();
    let pkey = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(dir.path().join("audit-key.pem")).unwrap(),
    )
    .unwrap();
    let public: [u8; 32] = pkey.raw_public_key().unwrap().try_into().unwrap();
    let signer = NoteSigner::new(
        "kyso.bench/audit",
        &pkey.raw_private_key().unwrap(),
        &public,
    )
    .unwrap();
    let head = TreeHead {
        size: 1_000_000,
        root: [7; 32],
    };
    let n = 20_000;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(signer.sign("kyso.bench/audit", head).unwrap());
    }
    println!(
        "checkpoint signature: {:.1} µs each (one per group commit, beside its fsync)",
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    drop(key);

    // Group commit on SQLite.
    let sqlite = Location::Sqlite(dir.path().join("audit.sqlite3"))
        .open()
        .unwrap();
    let key = CheckpointKey::load(&dir.path().join("audit-key.pem")).unwrap();
    let log = Arc::new(AuditLog::start(sqlite, key, None).unwrap());
    let with_tree = report("SQLite", &log, 20_000.0);
    // The peer in the same run: the same appends to a log with the hash chain alone.
    let chain_dir = tempfile::tempdir().unwrap();
    let chain = Arc::new(chain_only::ChainOnly::open(
        &chain_dir.path().join("chain.sqlite3"),
    ));
    let key = CheckpointKey::load(&dir.path().join("audit-key.pem")).unwrap();
    let chain_log = Arc::new(AuditLog::start(chain, key, Some("kyso.bench/chain")).unwrap());
    let (chain_rate, _) = group_commit(&chain_log);
    chain_log.close();
    println!(
        "audit append, SQLite, hash chain alone (the log before the tree), same run: {chain_rate:.0} records/s; the tree keeps {:.0} % of it",
        100.0 * with_tree / chain_rate
    );

    // Group commit on PostgreSQL, in a schema of its own.
    let schema = format!("kyso_bench_{}", std::process::id());
    match postgres::Client::connect(&postgres_server(), postgres::NoTls) {
        Err(e) => println!("audit append, PostgreSQL: not measured ({e})"),
        Ok(mut admin) => {
            admin
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .unwrap();
            let url = format!("{}?options=-c%20search_path%3D{schema}", postgres_server());
            let store = Location::parse(&url).unwrap().open().unwrap();
            let key = CheckpointKey::load(&dir.path().join("audit-key.pem")).unwrap();
            let log = Arc::new(AuditLog::start(store, key, None).unwrap());
            report("PostgreSQL", &log, 10_000.0);
            drop(log);
            admin
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .unwrap();
        }
    }

    // A log of 1,000,000 records, written in commits of 4,096, then proofs of random
    // records in it.
    const SIZE: u64 = 1_000_000;
    let big = tempfile::tempdir().unwrap();
    let store = Location::Sqlite(big.path().join("audit.sqlite3"))
        .open()
        .unwrap();
    let started = Instant::now();
    let mut written = 0u64;
    let mut latest = None;
    while written < SIZE {
        let batch: Vec<Entry> = (written..(written + 4096).min(SIZE)).map(entry).collect();
        let mut seal =
            |_: &kyso::audit::Head, tree: TreeHead, _: &kyso::audit::tree::TreeWriter<'_>| {
                Ok(signer.sign("kyso.bench/audit", tree))
            };
        let appended = store.append(&batch, &mut seal).unwrap();
        written = appended.head.sequence;
        latest = appended.checkpoint;
    }
    let latest = latest.unwrap();
    println!(
        "a log of {SIZE} records written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    let mut hashes = 0usize;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..1000 {
        // xorshift: records spread over the whole log.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let sequence = 1 + state % SIZE;
        let start = Instant::now();
        let proof = kyso::audit::prove(store.as_ref(), sequence, &latest).unwrap();
        times.push(start.elapsed());
        hashes = hashes.max(proof.inclusion.len());
    }
    times.sort_unstable();
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6;
    let verdict = if p(0.99) < 1000.0 { "under" } else { "OVER" };
    println!(
        "inclusion proof in a log of {SIZE} records: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({verdict} 1 ms at p99); each reads the record and at most {hashes} stored hashes (log₂ n = {:.1})",
        p(0.5),
        p(0.99),
        times.last().unwrap().as_secs_f64() * 1e6,
        (SIZE as f64).log2()
    );
}
