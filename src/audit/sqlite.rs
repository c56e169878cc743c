//! The embedded audit store: SQLite in WAL mode with full synchronous commits, schema by
//! embedded migrations (`PRAGMA user_version`). One connection writes, one reads: WAL lets
//! auditors query while the writer commits. Each append takes the database's write lock
//! before it reads the head, so several processes may write to one database.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use super::tree::{self, SignedCheckpoint, TreeHead};
use super::{
    Appended, AuditError, AuditStore, Checkpoint, Corruption, Entry, Head, Metadata, Query, Record,
    Seal,
};

/// The schema, one step per version; applied in order from the database's `user_version`.
const MIGRATIONS: &[&str] = &[
    // 1: records and checkpoints.
    "CREATE TABLE records (
        sequence INTEGER PRIMARY KEY,
        time_ns INTEGER NOT NULL,
        principal TEXT NOT NULL,
        peer TEXT NOT NULL,
        method TEXT NOT NULL,
        document_sha256 TEXT,
        document_size INTEGER,
        document_id TEXT NOT NULL,
        document_number TEXT NOT NULL,
        sender TEXT NOT NULL,
        extra TEXT NOT NULL,
        signatures TEXT NOT NULL,
        verdict TEXT NOT NULL,
        error TEXT,
        kyso_version TEXT NOT NULL,
        trust_fingerprint TEXT NOT NULL,
        previous_hash BLOB NOT NULL,
        hash BLOB NOT NULL
    );
    CREATE INDEX records_document ON records(document_sha256);
    CREATE INDEX records_principal ON records(principal);
    CREATE INDEX records_time ON records(time_ns);
    CREATE INDEX records_number ON records(document_number);
    CREATE TABLE checkpoints (
        sequence INTEGER PRIMARY KEY,
        head_hash BLOB NOT NULL,
        time_ns INTEGER NOT NULL,
        signature BLOB NOT NULL
    );",
    // 2: the document policy's result (JSON of `PolicySummary`), NULL before policies.
    "ALTER TABLE records ADD COLUMN policy TEXT;",
    // 3: the Merkle tree's stored hashes (by tlog stored-hash index), its signed
    // checkpoints, and the log's name. The hashes of the records already here are computed
    // by `build_tree` in the same transaction.
    "CREATE TABLE tree_hashes (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL);
    CREATE TABLE tree_checkpoints (
        size INTEGER PRIMARY KEY,
        root BLOB NOT NULL,
        time_ns INTEGER NOT NULL,
        note TEXT NOT NULL
    );
    CREATE TABLE log_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
];

/// The schema version that adds the tree.
const TREE_VERSION: usize = 3;

/// The audit log in one SQLite file (WAL mode, one transaction per group commit).
pub struct SqliteStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, AuditError> {
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        // The indexes of a large log (document hashes arrive in no order) stay in memory:
        // up to 64 MiB of pages, against SQLite's 2 MiB by default.
        writer.pragma_update(None, "cache_size", -65536)?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&writer)?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        // Names and numbers are searched without case or diacritics: "huyen" finds
        // "Huyến", "qd" finds "QĐ" (the fold of the document rules).
        reader.create_scalar_function(
            "kyso_fold",
            1,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8
                | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let text: Option<String> = ctx.get(0)?;
                Ok(text.map(|t| crate::policy::roles::fold(&t)))
            },
        )?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn migrate(c: &Connection) -> Result<(), AuditError> {
    let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(AuditError::NewerSchema {
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = c.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == TREE_VERSION {
            build_tree(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Adds the records already in a log from before the tree to it, as they stand: their
/// hash-chain checkpoints still vouch for them, and `kyso audit verify` checks those.
fn build_tree(c: &Connection) -> Result<(), AuditError> {
    let mut tree = tree::Rebuild::default();
    let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM records ORDER BY sequence"))?;
    let mut insert = c.prepare("INSERT INTO tree_hashes (idx, hash) VALUES (?1, ?2)")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let r = read_row(row)?;
        let canonical = Record::canonical(r.sequence, &r.previous_hash, &r.entry);
        let (first, hashes) = tree.push(tree::leaf_hash(&canonical));
        for (i, h) in (first..).zip(hashes) {
            insert.execute(params![i as i64, &h[..]])?;
        }
    }
    Ok(())
}

fn read_tree_hashes(c: &Connection, indexes: &[u64]) -> Result<Vec<[u8; 32]>, AuditError> {
    let mut stmt = c.prepare_cached("SELECT hash FROM tree_hashes WHERE idx = ?1")?;
    indexes
        .iter()
        .map(|&i| {
            let h: Option<Vec<u8>> = stmt.query_row(params![i as i64], |r| r.get(0)).optional()?;
            h.and_then(|h| h.try_into().ok()).ok_or_else(|| {
                AuditError::Tree(format!("stored hash {i} is missing or not 32 bytes"))
            })
        })
        .collect()
}

fn read_tree_checkpoint(row: &Row<'_>) -> rusqlite::Result<SignedCheckpoint> {
    let root: Vec<u8> = row.get(1)?;
    Ok(SignedCheckpoint {
        head: TreeHead {
            size: row.get::<_, i64>(0)? as u64,
            root: root.try_into().unwrap_or([0; 32]),
        },
        note: row.get(2)?,
    })
}

const COLUMNS: &str =
    "sequence, time_ns, principal, peer, method, document_sha256, document_size, \
     document_id, document_number, sender, extra, signatures, verdict, error, kyso_version, \
     trust_fingerprint, previous_hash, hash, policy";

fn hash32(v: Vec<u8>) -> Result<[u8; 32], Corruption> {
    v.try_into().map_err(|_| Corruption::HashLength)
}

/// Reads a row; what does not decode is reported with the row's sequence.
fn read_row(row: &Row<'_>) -> Result<Record, AuditError> {
    let sequence: i64 = row.get(0)?;
    let seq = sequence as u64;
    decode_row(row).map_err(|source| AuditError::Corrupt {
        sequence: seq,
        source,
    })
}

fn decode_row(row: &Row<'_>) -> Result<Record, Corruption> {
    let text = |i: usize| row.get::<_, String>(i);
    let time_ns: i64 = row.get(1)?;
    let entry = Entry {
        time: OffsetDateTime::from_unix_timestamp_nanos(time_ns as i128)?,
        principal: text(2)?,
        peer: text(3)?,
        method: text(4)?,
        document_sha256: row.get(5)?,
        document_size: row.get::<_, Option<i64>>(6)?.map(|n| n as u64),
        metadata: Metadata {
            document_id: text(7)?,
            document_number: text(8)?,
            sender: text(9)?,
            extra: serde_json::from_str(&text(10)?)?,
        },
        signatures: serde_json::from_str(&text(11)?)?,
        verdict: text(12)?,
        error: row.get(13)?,
        kyso_version: text(14)?,
        trust_fingerprint: text(15)?,
        policy: row
            .get::<_, Option<String>>(18)?
            .map(|p| serde_json::from_str(&p))
            .transpose()?,
    };
    Ok(Record {
        sequence: row.get::<_, i64>(0)? as u64,
        entry,
        previous_hash: hash32(row.get(16)?)?,
        hash: hash32(row.get(17)?)?,
    })
}

/// The head as `c` sees it (inside a transaction, as that transaction sees it).
fn read_head(c: &Connection) -> Result<Head, AuditError> {
    let last: Option<(i64, Vec<u8>)> = c
        .query_row(
            "SELECT sequence, hash FROM records ORDER BY sequence DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let checkpointed: i64 = c.query_row(
        "SELECT MAX((SELECT COALESCE(MAX(sequence), 0) FROM checkpoints), \
                    (SELECT COALESCE(MAX(size), 0) FROM tree_checkpoints))",
        [],
        |r| r.get(0),
    )?;
    let checkpoint = c
        .query_row(
            "SELECT size, root, note FROM tree_checkpoints ORDER BY size DESC LIMIT 1",
            [],
            read_tree_checkpoint,
        )
        .optional()?;
    let (sequence, hash) = match last {
        Some((s, h)) => (
            s as u64,
            hash32(h).map_err(|source| AuditError::Corrupt {
                sequence: s as u64,
                source,
            })?,
        ),
        None => (0, [0; 32]),
    };
    Ok(Head {
        sequence,
        hash,
        checkpointed: checkpointed as u64,
        checkpoint: checkpoint.map(|c| c.head),
    })
}

fn read_checkpoint(row: &Row<'_>) -> rusqlite::Result<Checkpoint> {
    let head: Vec<u8> = row.get(1)?;
    let time_ns: i64 = row.get(2)?;
    Ok(Checkpoint {
        sequence: row.get::<_, i64>(0)? as u64,
        head_hash: head.try_into().unwrap_or([0; 32]),
        time: OffsetDateTime::from_unix_timestamp_nanos(time_ns as i128)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        signature: row.get(3)?,
    })
}

impl AuditStore for SqliteStore {
    fn head(&self) -> Result<Head, AuditError> {
        let c = self.reader();
        read_head(&c)
    }

    fn lowest_sequence(&self) -> Result<Option<i64>, AuditError> {
        let c = self.reader();
        Ok(c.query_row("SELECT MIN(sequence) FROM records", [], |r| r.get(0))?)
    }

    fn append(&self, entries: &[Entry], seal: &mut Seal<'_>) -> Result<Appended, AuditError> {
        let mut c = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        // IMMEDIATE takes the write lock before the head is read: another writer on the
        // same database (another kyso) waits, and then chains after these records.
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let before = read_head(&tx)?;
        let (places, mut head) = before.extend(entries);
        {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO records ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
            ))?;
            for (e, place) in entries.iter().zip(&places) {
                insert.execute(params![
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
                    serde_json::to_string(&e.metadata.extra).unwrap_or_else(|_| "{}".into()),
                    serde_json::to_string(&e.signatures).unwrap_or_else(|_| "[]".into()),
                    e.verdict,
                    e.error,
                    e.kyso_version,
                    e.trust_fingerprint,
                    &place.previous_hash[..],
                    &place.hash[..],
                    e.policy
                        .as_ref()
                        .and_then(|p| serde_json::to_string(p).ok()),
                ])?;
            }
        }
        let read = |indexes: &[u64]| read_tree_hashes(&tx, indexes);
        let mut tree = tree::TreeWriter::new(&read);
        tree.preload(before.sequence)?;
        for place in &places {
            tree.push(place.sequence - 1, place.leaf_hash)?;
        }
        let grown = TreeHead {
            size: head.sequence,
            root: tree.root(head.sequence)?,
        };
        let checkpoint = seal(&head, grown, &tree)?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO tree_hashes (idx, hash) VALUES (?1, ?2)")?;
            for (i, h) in tree.written() {
                insert.execute(params![i as i64, &h[..]])?;
            }
        }
        if let Some(cp) = &checkpoint {
            tx.execute(
                "INSERT INTO tree_checkpoints (size, root, time_ns, note) VALUES (?1, ?2, ?3, ?4)",
                params![
                    cp.head.size as i64,
                    &cp.head.root[..],
                    OffsetDateTime::now_utc().unix_timestamp_nanos() as i64,
                    cp.note
                ],
            )?;
            head.checkpointed = cp.head.size;
            head.checkpoint = Some(cp.head);
        }
        tx.commit()?;
        Ok(Appended {
            head,
            checkpoint,
            places,
        })
    }

    fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, AuditError> {
        read_tree_hashes(&self.reader(), indexes)
    }

    fn tree_hash_range(&self, from: u64, to: u64) -> Result<Vec<(u64, [u8; 32])>, AuditError> {
        let c = self.reader();
        let mut stmt = c.prepare_cached(
            "SELECT idx, hash FROM tree_hashes WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )?;
        let rows = stmt.query_map(params![from as i64, to as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (i, h) = row?;
            // A hash of another length differs from every recomputed one.
            out.push((i, h.try_into().unwrap_or([0; 32])));
        }
        Ok(out)
    }

    fn tree_checkpoints(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<SignedCheckpoint>, AuditError> {
        let c = self.reader();
        let mut stmt = c.prepare(
            "SELECT size, root, note FROM tree_checkpoints WHERE size >= ?1 AND size <= ?2 ORDER BY size",
        )?;
        let rows = stmt.query_map(
            params![from as i64, to.map_or(i64::MAX, |t| t as i64)],
            read_tree_checkpoint,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn latest_tree_checkpoint(&self) -> Result<Option<SignedCheckpoint>, AuditError> {
        let c = self.reader();
        Ok(c.query_row(
            "SELECT size, root, note FROM tree_checkpoints ORDER BY size DESC LIMIT 1",
            [],
            read_tree_checkpoint,
        )
        .optional()?)
    }

    fn origin(&self) -> Result<Option<String>, AuditError> {
        let c = self.reader();
        Ok(c.query_row(
            "SELECT value FROM log_meta WHERE name = 'origin'",
            [],
            |r| r.get(0),
        )
        .optional()?)
    }

    fn claim_origin(&self, origin: &str) -> Result<String, AuditError> {
        let c = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        c.execute(
            "INSERT OR IGNORE INTO log_meta (name, value) VALUES ('origin', ?1)",
            params![origin],
        )?;
        Ok(c.query_row(
            "SELECT value FROM log_meta WHERE name = 'origin'",
            [],
            |r| r.get(0),
        )?)
    }

    fn get(&self, sequence: u64) -> Result<Option<Record>, AuditError> {
        let c = self.reader();
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM records WHERE sequence = ?1"
        ))?;
        let mut rows = stmt.query(params![sequence as i64])?;
        match rows.next()? {
            Some(row) => read_row(row).map(Some),
            None => Ok(None),
        }
    }

    fn query(&self, q: &Query) -> Result<Vec<Record>, AuditError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |clause: &str, v: rusqlite::types::Value| {
            values.push(v);
            clauses.push(clause.replace('?', &format!("?{}", values.len())));
        };
        use rusqlite::types::Value as V;
        let like = |s: &str| {
            V::Text(format!(
                "%{}%",
                s.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            ))
        };
        let signature_has = |path: &str, op: &str| {
            format!("EXISTS (SELECT 1 FROM json_each(records.signatures) WHERE json_extract(value, '$.{path}') {op})")
        };
        if let Some(v) = &q.document_sha256 {
            add("document_sha256 = ?", V::Text(v.to_ascii_lowercase()));
        }
        let folded_has = |path: &str| {
            format!("EXISTS (SELECT 1 FROM json_each(records.signatures) WHERE kyso_fold(json_extract(value, '$.{path}')) LIKE ? ESCAPE '\\')")
        };
        let fold = crate::policy::roles::fold;
        if let Some(v) = &q.signer_name {
            add(&folded_has("signer_common_name"), like(&fold(v)));
        }
        if let Some(v) = &q.certificate_sha256 {
            add(
                &signature_has("certificate_sha256", "= ?"),
                V::Text(v.to_ascii_lowercase()),
            );
        }
        if let Some(v) = &q.signer_serial {
            add(
                &signature_has("signer_serial", "= ?"),
                V::Text(v.to_ascii_uppercase()),
            );
        }
        if let Some(v) = &q.organization {
            add(&folded_has("signer_organization"), like(&fold(v)));
        }
        if let Some(v) = &q.verdict {
            add("verdict = ?", V::Text(v.to_ascii_uppercase()));
        }
        if let Some(v) = &q.caller {
            add("principal = ?", V::Text(v.clone()));
        }
        if let Some(v) = q.from {
            add("time_ns >= ?", V::Integer(v.unix_timestamp_nanos() as i64));
        }
        if let Some(v) = q.to {
            add("time_ns <= ?", V::Integer(v.unix_timestamp_nanos() as i64));
        }
        if let Some(v) = &q.document_number {
            add("kyso_fold(document_number) = ?", V::Text(fold(v)));
        }
        if let Some(v) = q.before {
            add("sequence < ?", V::Integer(v as i64));
        }
        // Rows numbered outside 1..n are not records of the log (`verify_log` names them).
        add("sequence >= ?", V::Integer(1));
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM records {filter} ORDER BY sequence DESC LIMIT {}",
            q.limit.max(1)
        );
        let c = self.reader();
        let mut stmt = c.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(read_row(row)?);
        }
        Ok(out)
    }

    fn scan(
        &self,
        from: u64,
        to: Option<u64>,
        visit: &mut dyn FnMut(Result<Record, AuditError>) -> bool,
    ) -> Result<(), AuditError> {
        let c = self.reader();
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM records WHERE sequence >= ?1 AND sequence <= ?2 ORDER BY sequence"
        ))?;
        let mut rows = stmt.query(params![from as i64, to.map_or(i64::MAX, |t| t as i64)])?;
        while let Some(row) = rows.next()? {
            if !visit(read_row(row)) {
                break;
            }
        }
        Ok(())
    }

    fn checkpoints(&self, from: u64, to: Option<u64>) -> Result<Vec<Checkpoint>, AuditError> {
        let c = self.reader();
        let mut stmt = c.prepare(
            "SELECT sequence, head_hash, time_ns, signature FROM checkpoints WHERE sequence >= ?1 AND sequence <= ?2 ORDER BY sequence",
        )?;
        let rows = stmt.query_map(
            params![from as i64, to.map_or(i64::MAX, |t| t as i64)],
            read_checkpoint,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let c = self.reader();
        Ok(c.query_row(
            "SELECT sequence, head_hash, time_ns, signature FROM checkpoints ORDER BY sequence DESC LIMIT 1",
            [],
            read_checkpoint,
        )
        .optional()?)
    }
}
