//! The audit log against both stores: what it finds, what it refuses, and what it cannot
//! tell without a checkpoint kept elsewhere. Each test runs on SQLite (`sqlite::…`) and on
//! PostgreSQL (`postgres::…`, ignored by a plain `cargo test`, run by `.ci/run`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/stores.rs"]
mod stores;

use std::sync::Arc;

use kyso::audit::tree;
use kyso::audit::{
    verify_log, Appended, AuditError, AuditLog, AuditStore, Checkpoint, Entry, Head, LogCheck,
    Query, Record, Seal, SignatureSummary,
};
use openssl::pkey::{PKey, Public};
use stores::{entry, Backend};

/// The columns of a record row that both stores have.
const COLUMNS: &str =
    "sequence, time_ns, principal, peer, method, document_sha256, document_size, \
     document_id, document_number, sender, extra, signatures, verdict, error, kyso_version, \
     trust_fingerprint, previous_hash, hash, policy";

on_both_stores!(
    names_and_numbers_are_found_without_case_or_diacritics,
    two_writers_on_one_database_extend_one_chain,
    a_store_that_cannot_be_read_is_an_error_not_tampering,
    a_range_is_checked_on_its_own,
    rows_numbered_outside_the_log_are_named_and_not_listed,
    a_record_appended_with_a_recomputed_hash_is_not_signed_over,
    a_rewritten_chain_contradicts_the_signed_checkpoint,
    only_a_kept_checkpoint_catches_a_tail_cut_with_its_checkpoints,
);

/// A closed log of `n` records (its last checkpoint at `n`) in `b`, and its key.
fn closed_log(b: &Backend, n: u64) -> PKey<Public> {
    let key = b.key();
    let public = key.public_key().clone();
    let log = AuditLog::start(b.open(), key, None).expect("log");
    for i in 1..=n {
        assert_eq!(log.append_blocking(entry(i)).expect("append").sequence, i);
    }
    log.close();
    public
}

fn check(
    b: &Backend,
    key: &PKey<Public>,
    from: u64,
    to: Option<u64>,
    kept: &[tree::SignedCheckpoint],
) -> LogCheck {
    verify_log(b.open().as_ref(), key, from, to, kept).expect("readable")
}

fn names_and_numbers_are_found_without_case_or_diacritics(b: Backend) {
    let store = b.open();
    let key = b.key();
    let log = AuditLog::start(store.clone(), key, None).expect("log");
    let mut e = entry(1);
    e.metadata.document_number = "123/QĐ-UBND".into();
    e.signatures.push(SignatureSummary {
        signer_common_name: Some("Trần Văn Huyến".into()),
        signer_organization: Some("Tỉnh ủy Hậu Giang".into()),
        signer_serial: Some("54010203".into()),
        certificate_sha256: Some("ab".repeat(32)),
        indication: "PASSED".into(),
        ..Default::default()
    });
    e.signatures.push(SignatureSummary {
        signer_common_name: Some("Tỉnh ủy Hậu Giang".into()),
        signer_serial: Some("5401FFFF".into()),
        indication: "PASSED".into(),
        ..Default::default()
    });
    log.append_blocking(e).expect("append");
    log.append_blocking(entry(2)).expect("append");
    let found = |q: Query| {
        store
            .query(&Query { limit: 10, ..q })
            .expect("query")
            .iter()
            .map(|r| r.sequence)
            .collect::<Vec<_>>()
    };
    for name in ["huyen", "HUYẾN", "tran van", "Trần Văn Huyến"] {
        let q = Query {
            signer_name: Some(name.into()),
            ..Default::default()
        };
        assert_eq!(found(q), vec![1], "{name}");
    }
    for body in ["hau giang", "TỈNH ỦY", "tinh uy hau"] {
        let q = Query {
            organization: Some(body.into()),
            ..Default::default()
        };
        assert_eq!(found(q), vec![1], "{body}");
    }
    for number in ["123/QĐ-UBND", "123/qđ-ubnd", "123/QD-UBND"] {
        let q = Query {
            document_number: Some(number.into()),
            ..Default::default()
        };
        assert_eq!(found(q), vec![1], "{number}");
    }
    for q in [
        Query {
            certificate_sha256: Some("AB".repeat(32)),
            ..Default::default()
        },
        Query {
            signer_serial: Some("5401ffff".into()),
            ..Default::default()
        },
        Query {
            signer_serial: Some("54010203".into()),
            signer_name: Some("tinh uy".into()),
            ..Default::default()
        },
    ] {
        assert_eq!(found(q.clone()), vec![1], "{q:?}");
    }
    let q = Query {
        signer_serial: Some("5401".into()),
        ..Default::default()
    };
    assert!(found(q).is_empty(), "a serial is matched whole");
    // Wildcards in the text are text, not patterns.
    let q = Query {
        signer_name: Some("%".into()),
        ..Default::default()
    };
    assert!(found(q).is_empty());
    let q = Query {
        document_number: Some("123/QĐ".into()),
        ..Default::default()
    };
    assert!(found(q).is_empty(), "the number is matched whole");
    log.close();
}

fn two_writers_on_one_database_extend_one_chain(b: Backend) {
    let open = || {
        // Each instance its own connection, the same key.
        AuditLog::start(b.open(), b.key(), None).expect("log")
    };
    // Two kyso instances on one database, each with four busy callers.
    let logs = [open(), open()];
    let mut sequences: Vec<u64> = std::thread::scope(|s| {
        let callers: Vec<_> = logs
            .iter()
            .flat_map(|log| std::iter::repeat_n(log, 4))
            .enumerate()
            .map(|(c, log)| {
                s.spawn(move || {
                    (0..50)
                        .map(|i| {
                            log.append_blocking(entry(c as u64 * 100 + i))
                                .expect("append")
                                .sequence
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        callers
            .into_iter()
            .flat_map(|c| c.join().expect("caller"))
            .collect()
    });
    for log in &logs {
        log.close();
    }
    sequences.sort_unstable();
    assert_eq!(
        sequences,
        (1..=400).collect::<Vec<_>>(),
        "each record its own place"
    );
    let key = b.key();
    let c = check(&b, key.public_key(), 0, None, &[]);
    assert!(c.ok, "{}", c.problem);
    assert_eq!(c.records_checked, 400);
    assert!(c.checkpoints_checked >= 1);
}

/// A store whose reads fail as a disk would.
struct FailingReads(Arc<dyn AuditStore>);

impl AuditStore for FailingReads {
    fn head(&self) -> Result<Head, AuditError> {
        self.0.head()
    }
    fn lowest_sequence(&self) -> Result<Option<i64>, AuditError> {
        self.0.lowest_sequence()
    }
    fn append(&self, entries: &[Entry], seal: &mut Seal<'_>) -> Result<Appended, AuditError> {
        self.0.append(entries, seal)
    }
    fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, AuditError> {
        self.0.tree_hashes(indexes)
    }
    fn tree_hash_range(&self, from: u64, to: u64) -> Result<Vec<(u64, [u8; 32])>, AuditError> {
        self.0.tree_hash_range(from, to)
    }
    fn tree_checkpoints(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<tree::SignedCheckpoint>, AuditError> {
        self.0.tree_checkpoints(from, to)
    }
    fn latest_tree_checkpoint(&self) -> Result<Option<tree::SignedCheckpoint>, AuditError> {
        self.0.latest_tree_checkpoint()
    }
    fn origin(&self) -> Result<Option<String>, AuditError> {
        self.0.origin()
    }
    fn claim_origin(&self, origin: &str) -> Result<String, AuditError> {
        self.0.claim_origin(origin)
    }
    fn get(&self, _: u64) -> Result<Option<Record>, AuditError> {
        Err(AuditError::Store(rusqlite::Error::InvalidQuery))
    }
    fn query(&self, q: &Query) -> Result<Vec<Record>, AuditError> {
        self.0.query(q)
    }
    fn scan(
        &self,
        _: u64,
        _: Option<u64>,
        visit: &mut dyn FnMut(Result<Record, AuditError>) -> bool,
    ) -> Result<(), AuditError> {
        visit(Err(AuditError::Store(rusqlite::Error::InvalidQuery)));
        Ok(())
    }
    fn checkpoints(&self, from: u64, to: Option<u64>) -> Result<Vec<Checkpoint>, AuditError> {
        self.0.checkpoints(from, to)
    }
    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        self.0.latest_checkpoint()
    }
}

fn a_store_that_cannot_be_read_is_an_error_not_tampering(b: Backend) {
    let key = closed_log(&b, 4);
    let store = FailingReads(b.open());
    for from in [0, 3] {
        let e = verify_log(&store, &key, from, None, &[]).expect_err("the reads fail");
        assert!(matches!(e, AuditError::Store(_)), "from {from}: {e:?}");
    }
}

fn a_range_is_checked_on_its_own(b: Backend) {
    let key = closed_log(&b, 6);
    assert!(check(&b, &key, 0, None, &[]).ok);
    b.sql("UPDATE records SET verdict = 'INVALID' WHERE sequence = 5");
    let before = check(&b, &key, 1, Some(4), &[]);
    assert!(before.ok, "{}", before.problem);
    assert_eq!(before.records_checked, 4);
    for (from, to) in [(0, None), (3, Some(6)), (5, Some(5))] {
        let c = check(&b, &key, from, to, &[]);
        assert_eq!(
            c.first_bad_sequence,
            Some(5),
            "{from}..{to:?}: {}",
            c.problem
        );
        assert!(c.problem.contains("was changed"), "{}", c.problem);
    }
}

fn rows_numbered_outside_the_log_are_named_and_not_listed(first: Backend) {
    for (sequence, b) in [(0, first.fresh()), (-7, first)] {
        let key = closed_log(&b, 3);
        // A copy of record 2 under a number the log never gives.
        b.sql(&format!(
            "INSERT INTO records ({COLUMNS}) SELECT {sequence}, time_ns, principal, peer, method, \
                 document_sha256, document_size, document_id, document_number, sender, extra, \
                 signatures, verdict, error, kyso_version, trust_fingerprint, previous_hash, \
                 hash, policy FROM records WHERE sequence = 2"
        ));
        let c = check(&b, &key, 0, None, &[]);
        assert!(!c.ok, "{sequence}");
        assert!(
            c.problem.contains(&format!(
                "a record numbered {sequence} is outside the log's numbering"
            )),
            "{}",
            c.problem
        );
        let store = b.open();
        let listed = store
            .query(&Query {
                limit: 100,
                ..Query::default()
            })
            .expect("query");
        assert_eq!(
            listed.iter().map(|r| r.sequence).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        // And kyso does not extend the log.
        let key = b.key();
        let e = AuditLog::start(store, key, None).err().expect("refused");
        assert!(
            matches!(e, AuditError::Unaccounted { first, .. } if first == sequence),
            "{e}"
        );
    }
}

fn a_record_appended_with_a_recomputed_hash_is_not_signed_over(b: Backend) {
    let key = closed_log(&b, 3);
    // Someone with write access appends record 4, its hash recomputed: the chain holds.
    let store = b.open();
    let last = store.get(3).expect("read").expect("record 3");
    let forged = Record::compute_hash(4, &last.hash, &last.entry);
    b.sql(&format!(
            "INSERT INTO records ({COLUMNS}) SELECT 4, time_ns, principal, peer, method, document_sha256, \
             document_size, document_id, document_number, sender, extra, signatures, verdict, \
             error, kyso_version, trust_fingerprint, {}, {}, policy FROM records \
             WHERE sequence = 3",
            b.blob(&last.hash),
            b.blob(&forged)
        ),
    );
    let c = check(&b, &key, 0, None, &[]);
    assert_eq!(c.first_bad_sequence, Some(4), "{}", c.problem);
    assert!(
        c.problem.contains("not in the Merkle tree kyso keeps"),
        "{}",
        c.problem
    );
    // And with its tree hash forged too, no signed checkpoint covers it.
    let leaf = tree::leaf_hash(&Record::canonical(4, &last.hash, &last.entry));
    let read = |indexes: &[u64]| store.tree_hashes(indexes);
    let (first, hashes) = tree::Rebuild::resume(3, &read).expect("edge").push(leaf);
    for (i, h) in (first..).zip(hashes) {
        b.sql(&format!(
            "INSERT INTO tree_hashes VALUES ({i}, {})",
            b.blob(&h)
        ));
    }
    let c = check(&b, &key, 0, None, &[]);
    assert_eq!(c.first_bad_sequence, Some(4), "{}", c.problem);
    assert!(
        c.problem.contains("not covered by any signed checkpoint"),
        "{}",
        c.problem
    );
    let key = b.key();
    let e = AuditLog::start(store, key, None).err().expect("refused");
    assert_eq!(
        e.to_string(),
        "audit record 4 is not accounted for: no checkpoint kyso signed covers it; kyso does not extend this log (check it with kyso audit verify)"
    );
}

fn a_rewritten_chain_contradicts_the_signed_checkpoint(b: Backend) {
    let key = closed_log(&b, 5);
    // Change record 3 and recompute every hash after it, as someone with write access
    // to the database but not the key would.
    let store = b.open();
    let mut previous = store.get(2).expect("read").expect("record 2").hash;
    for sequence in 3..=5 {
        let mut r = store.get(sequence).expect("read").expect("record");
        if sequence == 3 {
            r.entry.verdict = "INVALID".into();
        }
        let hash = Record::compute_hash(sequence, &previous, &r.entry);
        b.sql(&format!(
            "UPDATE records SET verdict = '{}', previous_hash = {}, hash = {} WHERE sequence = {sequence}",
            r.entry.verdict,
            b.blob(&previous),
            b.blob(&hash)
        ));
        previous = hash;
    }
    let c = check(&b, &key, 0, None, &[]);
    assert!(!c.ok);
    // Every commit was sealed: the first checkpoint over a rewritten record catches it.
    assert_eq!(c.first_bad_sequence, Some(3));
    assert!(c.problem.contains("the log was rewritten"), "{}", c.problem);
}

fn only_a_kept_checkpoint_catches_a_tail_cut_with_its_checkpoints(b: Backend) {
    let key = closed_log(&b, 6);
    let store = b.open();
    let kept = store
        .latest_tree_checkpoint()
        .expect("read")
        .expect("closing checkpoint");
    assert_eq!(kept.head.size, 6);
    drop(store);
    b.sql("DELETE FROM records WHERE sequence >= 5; DELETE FROM tree_checkpoints WHERE size >= 5;");
    // The tree's hashes left behind tell of the cut.
    let left = check(&b, &key, 0, None, &[]);
    assert_eq!(left.first_bad_sequence, Some(5), "{}", left.problem);
    assert!(
        left.problem.contains("the Merkle tree holds it"),
        "{}",
        left.problem
    );
    let store = b.open();
    let e = AuditLog::start(store, b.key(), None)
        .err()
        .expect("refused");
    assert!(matches!(e, AuditError::Unaccounted { first: 5, .. }), "{e}");
    // Cut with them, only a checkpoint kept elsewhere tells.
    b.sql(&format!(
        "DELETE FROM tree_hashes WHERE idx >= {}",
        tlog_tiles::stored_hash_count(4)
    ));
    let alone = check(&b, &key, 0, None, &[]);
    assert!(
        alone.ok,
        "what the log alone cannot tell: {}",
        alone.problem
    );
    let c = check(&b, &key, 0, None, std::slice::from_ref(&kept));
    assert_eq!(c.first_bad_sequence, Some(6), "{}", c.problem);
    assert!(
        c.problem.contains("a kept checkpoint covers it"),
        "{}",
        c.problem
    );

    // A kept checkpoint must itself be the service's.
    let mut forged = kept.clone();
    forged.head.size = 4;
    let c = check(&b, &key, 0, None, &[forged]);
    assert_eq!(c.first_bad_sequence, Some(4));
    assert!(c.problem.contains("does not verify"), "{}", c.problem);
    // Outside the range checked, it is not consulted.
    let c = check(&b, &key, 1, Some(3), std::slice::from_ref(&kept));
    assert!(c.ok, "{}", c.problem);
    // With every checkpoint gone, the log alone tells: kyso sealed each commit.
    b.sql("DELETE FROM tree_checkpoints;");
    let alone = check(&b, &key, 0, None, &[]);
    assert_eq!(alone.first_bad_sequence, Some(1), "{}", alone.problem);
}

/// The PostgreSQL writer's connection ended under it (a restart of the server, a DBA's
/// `pg_terminate_backend`): the next group commit connects again, the readers' pool
/// replaces its connections, and the log goes on as one tree.
#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (.ci/run starts it and runs these)"]
fn a_postgres_log_outlives_its_connections() {
    let b = Backend::postgres();
    let name = b.schema().expect("a PostgreSQL backend").to_owned();
    // The store's connections carry the schema's name, so that only they are ended.
    let url = format!("{}&application_name={name}", b.url());
    let store = kyso::audit::Location::parse(&url)
        .expect("location")
        .open()
        .expect("store");
    let key = b.key();
    let public = key.public_key().clone();
    let log = AuditLog::start(store, key, None).expect("log");
    for i in 1..=3 {
        log.append_blocking(entry(i)).expect("append");
    }
    assert_eq!(log.store().head().expect("head").sequence, 3);
    b.sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
    ));
    let count = format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{name}'");
    let mut admin = ::postgres::Client::connect(&b.url(), ::postgres::NoTls).expect("admin");
    for _ in 0..100 {
        let n: i64 = admin.query_one(&count, &[]).expect("count").get(0);
        if n == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The client side sees the end of its connections.
    std::thread::sleep(std::time::Duration::from_millis(200));
    for i in 4..=6 {
        assert_eq!(log.append_blocking(entry(i)).expect("append").sequence, i);
    }
    assert_eq!(log.store().head().expect("head").sequence, 6);
    log.close();
    let c = check(&b, &public, 0, None, &[]);
    assert!(c.ok, "{}", c.problem);
    assert_eq!(c.records_checked, 6);
}
