//! The audit log as it was before the Merkle tree, for the benches that compare with it in
//! one run (`service`, `audit`).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::Path;

use kyso::audit::{Appended, AuditError, AuditStore, Entry, Head, Seal};

/// The audit log as it was before the Merkle tree, for the comparison of the log with and
/// without the tree in one run: the same record columns, indexes and hash chain in SQLite
/// (WAL, full synchronous commits), one transaction per group commit sealed by a signed
/// note, and no tree hashes, so no receipts either (their proof finds no record and is
/// left out).
pub struct ChainOnly(std::sync::Mutex<rusqlite::Connection>);

impl ChainOnly {
    pub fn open(path: &Path) -> ChainOnly {
        let c = rusqlite::Connection::open(path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c.execute_batch(
            "CREATE TABLE records (sequence INTEGER PRIMARY KEY, time_ns INTEGER, principal TEXT,
             peer TEXT, method TEXT, document_sha256 TEXT, document_size INTEGER,
             document_id TEXT, document_number TEXT, sender TEXT, extra TEXT, signatures TEXT,
             verdict TEXT, error TEXT, kyso_version TEXT, trust_fingerprint TEXT,
             previous_hash BLOB, hash BLOB, policy TEXT);
             CREATE INDEX records_document ON records(document_sha256);
             CREATE INDEX records_principal ON records(principal);
             CREATE INDEX records_time ON records(time_ns);
             CREATE INDEX records_number ON records(document_number);
             CREATE TABLE notes (size INTEGER PRIMARY KEY, note TEXT);",
        )
        .unwrap();
        ChainOnly(std::sync::Mutex::new(c))
    }
}

impl AuditStore for ChainOnly {
    fn head(&self) -> Result<Head, AuditError> {
        let c = self.0.lock().unwrap();
        let last: Option<(i64, Vec<u8>)> = c
            .query_row(
                "SELECT sequence, hash FROM records ORDER BY sequence DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        let (sequence, hash) =
            last.map_or((0, [0; 32]), |(s, h)| (s as u64, h.try_into().unwrap()));
        Ok(Head {
            sequence,
            hash,
            checkpointed: sequence,
            checkpoint: None,
        })
    }
    fn lowest_sequence(&self) -> Result<Option<i64>, AuditError> {
        Ok(None)
    }
    fn append(&self, entries: &[Entry], seal: &mut Seal<'_>) -> Result<Appended, AuditError> {
        let mut c = self.0.lock().unwrap();
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let last: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT sequence, hash FROM records ORDER BY sequence DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        let (sequence, hash) =
            last.map_or((0, [0; 32]), |(s, h)| (s as u64, h.try_into().unwrap()));
        let before = Head {
            sequence,
            hash,
            checkpointed: sequence,
            checkpoint: None,
        };
        let (places, mut head) = before.extend(entries);
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO records VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
                )
                .unwrap();
            for (e, place) in entries.iter().zip(&places) {
                insert
                    .execute(rusqlite::params![
                        place.sequence as i64,
                        e.time.unix_timestamp_nanos() as i64,
                        e.principal,
                        e.peer,
                        e.method,
                        e.document_sha256,
                        e.document_size.map(|n| n as i64),
                        e.metadata.document_id,
                        e.metadata.document_number,
                        e.metadata.sender,
                        serde_json::to_string(&e.metadata.extra).unwrap(),
                        serde_json::to_string(&e.signatures).unwrap(),
                        e.verdict,
                        e.error,
                        e.kyso_version,
                        e.trust_fingerprint,
                        &place.previous_hash[..],
                        &place.hash[..],
                        e.policy.as_ref().map(|p| serde_json::to_string(p).unwrap()),
                    ])
                    .unwrap();
            }
        }
        let none = |_: &[u64]| -> Result<Vec<[u8; 32]>, AuditError> { Ok(Vec::new()) };
        let tree = kyso::audit::tree::TreeWriter::new(&none);
        let head_of_no_tree = kyso::audit::tree::TreeHead {
            size: head.sequence,
            root: [0; 32],
        };
        let checkpoint = seal(&head, head_of_no_tree, &tree)?;
        if let Some(cp) = &checkpoint {
            tx.execute(
                "INSERT INTO notes VALUES (?1, ?2)",
                rusqlite::params![cp.head.size as i64, cp.note],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        head.checkpointed = head.sequence;
        Ok(Appended {
            head,
            checkpoint,
            places,
        })
    }
    fn tree_hashes(&self, _: &[u64]) -> Result<Vec<[u8; 32]>, AuditError> {
        Err(AuditError::Tree("no tree".into()))
    }
    fn tree_hash_range(&self, _: u64, _: u64) -> Result<Vec<(u64, [u8; 32])>, AuditError> {
        Ok(Vec::new())
    }
    fn tree_checkpoints(
        &self,
        _: u64,
        _: Option<u64>,
    ) -> Result<Vec<kyso::audit::tree::SignedCheckpoint>, AuditError> {
        Ok(Vec::new())
    }
    fn latest_tree_checkpoint(
        &self,
    ) -> Result<Option<kyso::audit::tree::SignedCheckpoint>, AuditError> {
        Ok(None)
    }
    fn origin(&self) -> Result<Option<String>, AuditError> {
        Ok(Some("kyso.bench/chain".into()))
    }
    fn claim_origin(&self, _: &str) -> Result<String, AuditError> {
        Ok("kyso.bench/chain".into())
    }
    fn get(&self, _: u64) -> Result<Option<kyso::audit::Record>, AuditError> {
        Ok(None)
    }
    fn query(&self, _: &kyso::audit::Query) -> Result<Vec<kyso::audit::Record>, AuditError> {
        Ok(Vec::new())
    }
    fn scan(
        &self,
        _: u64,
        _: Option<u64>,
        _: &mut dyn FnMut(Result<kyso::audit::Record, AuditError>) -> bool,
    ) -> Result<(), AuditError> {
        Ok(())
    }
    fn checkpoints(
        &self,
        _: u64,
        _: Option<u64>,
    ) -> Result<Vec<kyso::audit::Checkpoint>, AuditError> {
        Ok(Vec::new())
    }
    fn latest_checkpoint(&self) -> Result<Option<kyso::audit::Checkpoint>, AuditError> {
        Ok(None)
    }
}
