//! The shared audit store: PostgreSQL, for several kyso instances that keep one log.
//!
//! The schema comes from embedded migrations (`kyso_schema`), applied under an advisory
//! lock so that instances starting together apply each once. An append runs in one
//! transaction that first takes a transaction-scoped advisory lock ([`APPEND_LOCK`]) and
//! only then reads the head: every instance's group commit waits for the one before and
//! extends the tree after it, so the log never forks (the records' primary key would refuse
//! a fork anyway). Records, tree hashes and the checkpoint go in as one statement each
//! (`UNNEST` of arrays), so a group commit costs a few round trips whatever its size. Names,
//! organisations and document numbers are stored folded beside the record (without case or
//! diacritics, [`crate::policy::roles::fold`]) for the same searches as the SQLite store.
//!
//! One connection writes, one reads, as in the SQLite store. Connections are plain TCP:
//! PostgreSQL on the same host or network segment (TLS to the database is not built).

use std::cell::RefCell;
use std::sync::Mutex;

use ::postgres::types::ToSql;
use ::postgres::{Client, GenericClient, NoTls, Row};
use time::OffsetDateTime;

use super::tree::{self, SignedCheckpoint, TreeHead};
use super::{
    Appended, AuditError, AuditStore, Checkpoint, Corruption, Entry, Head, Metadata, Query, Record,
    Seal,
};

/// The advisory lock every append takes (an arbitrary constant: "kyso" in ASCII).
const APPEND_LOCK: i64 = 0x6b79_736f;
/// The advisory lock the migrations take.
const MIGRATE_LOCK: i64 = 0x6b79_736f + 1;

/// The schema, one step per version, applied in order from `kyso_schema`'s version.
const MIGRATIONS: &[&str] = &[
    // 1: records (with their folded search columns), the tree, its checkpoints, the name.
    "CREATE TABLE records (
        sequence BIGINT PRIMARY KEY,
        time_ns BIGINT NOT NULL,
        principal TEXT NOT NULL,
        peer TEXT NOT NULL,
        method TEXT NOT NULL,
        document_sha256 TEXT,
        document_size BIGINT,
        document_id TEXT NOT NULL,
        document_number TEXT NOT NULL,
        sender TEXT NOT NULL,
        extra TEXT NOT NULL,
        signatures TEXT NOT NULL,
        verdict TEXT NOT NULL,
        error TEXT,
        kyso_version TEXT NOT NULL,
        trust_fingerprint TEXT NOT NULL,
        previous_hash BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        policy TEXT,
        signers_folded TEXT NOT NULL DEFAULT '',
        organizations_folded TEXT NOT NULL DEFAULT '',
        document_number_folded TEXT NOT NULL DEFAULT '',
        certificates TEXT[] NOT NULL DEFAULT '{}',
        serials TEXT[] NOT NULL DEFAULT '{}'
    );
    CREATE INDEX records_document ON records(document_sha256);
    CREATE INDEX records_principal ON records(principal);
    CREATE INDEX records_time ON records(time_ns);
    CREATE INDEX records_number ON records(document_number_folded);
    CREATE TABLE tree_hashes (idx BIGINT PRIMARY KEY, hash BYTEA NOT NULL);
    CREATE TABLE tree_checkpoints (
        size BIGINT PRIMARY KEY,
        root BYTEA NOT NULL,
        time_ns BIGINT NOT NULL,
        note TEXT NOT NULL
    );
    CREATE TABLE log_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
];

/// The audit log in a PostgreSQL database.
pub struct PgStore {
    writer: Mutex<Client>,
    reader: Mutex<Client>,
}

impl PgStore {
    /// Connects to `url` (twice: a writer and a reader) and migrates the schema.
    pub fn connect(url: &str) -> Result<PgStore, AuditError> {
        let mut writer = Client::connect(url, NoTls)?;
        migrate(&mut writer)?;
        let reader = Client::connect(url, NoTls)?;
        Ok(PgStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Client> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn migrate(c: &mut Client) -> Result<(), AuditError> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS kyso_schema (version INT NOT NULL)")?;
    let version: Option<i32> = tx
        .query_opt("SELECT version FROM kyso_schema", &[])?
        .map(|r| r.get(0));
    let version = version.map_or(0, |v| usize::try_from(v).unwrap_or(usize::MAX));
    if version > MIGRATIONS.len() {
        return Err(AuditError::NewerSchema {
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for sql in MIGRATIONS.iter().skip(version) {
        tx.batch_execute(sql)?;
    }
    tx.execute("DELETE FROM kyso_schema", &[])?;
    tx.execute(
        "INSERT INTO kyso_schema (version) VALUES ($1)",
        &[&(MIGRATIONS.len() as i32)],
    )?;
    tx.commit()?;
    Ok(())
}

const COLUMNS: &str =
    "sequence, time_ns, principal, peer, method, document_sha256, document_size, \
     document_id, document_number, sender, extra, signatures, verdict, error, kyso_version, \
     trust_fingerprint, previous_hash, hash, policy";

fn hash32(v: Vec<u8>) -> Result<[u8; 32], Corruption> {
    v.try_into().map_err(|_| Corruption::HashLength)
}

/// Reads a row; what does not decode is reported with the row's sequence.
fn read_row(row: &Row) -> Result<Record, AuditError> {
    let sequence: i64 = row.try_get(0)?;
    decode_row(row).map_err(|source| AuditError::Corrupt {
        sequence: sequence as u64,
        source,
    })
}

fn decode_row(row: &Row) -> Result<Record, Corruption> {
    let text = |i: usize| row.try_get::<_, String>(i);
    let time_ns: i64 = row.try_get(1)?;
    let entry = Entry {
        time: OffsetDateTime::from_unix_timestamp_nanos(time_ns as i128)?,
        principal: text(2)?,
        peer: text(3)?,
        method: text(4)?,
        document_sha256: row.try_get(5)?,
        document_size: row.try_get::<_, Option<i64>>(6)?.map(|n| n as u64),
        metadata: Metadata {
            document_id: text(7)?,
            document_number: text(8)?,
            sender: text(9)?,
            extra: serde_json::from_str(&text(10)?)?,
        },
        signatures: serde_json::from_str(&text(11)?)?,
        verdict: text(12)?,
        error: row.try_get(13)?,
        kyso_version: text(14)?,
        trust_fingerprint: text(15)?,
        policy: row
            .try_get::<_, Option<String>>(18)?
            .map(|p| serde_json::from_str(&p))
            .transpose()?,
    };
    Ok(Record {
        sequence: row.try_get::<_, i64>(0)? as u64,
        entry,
        previous_hash: hash32(row.try_get(16)?)?,
        hash: hash32(row.try_get(17)?)?,
    })
}

fn read_tree_checkpoint(row: &Row) -> Result<SignedCheckpoint, AuditError> {
    let root: Vec<u8> = row.try_get(1)?;
    Ok(SignedCheckpoint {
        head: TreeHead {
            size: row.try_get::<_, i64>(0)? as u64,
            root: root.try_into().unwrap_or([0; 32]),
        },
        note: row.try_get(2)?,
    })
}

/// The head as `c` sees it (inside a transaction, as that transaction sees it).
fn read_head(c: &mut impl GenericClient) -> Result<Head, AuditError> {
    let last = c.query_opt(
        "SELECT sequence, hash FROM records ORDER BY sequence DESC LIMIT 1",
        &[],
    )?;
    let latest = c.query_opt(
        "SELECT size, root, note FROM tree_checkpoints ORDER BY size DESC LIMIT 1",
        &[],
    )?;
    let checkpoint = latest.as_ref().map(read_tree_checkpoint).transpose()?;
    let (sequence, hash) = match last {
        Some(row) => {
            let s: i64 = row.try_get(0)?;
            let h = hash32(row.try_get(1)?).map_err(|source| AuditError::Corrupt {
                sequence: s as u64,
                source,
            })?;
            (s as u64, h)
        }
        None => (0, [0; 32]),
    };
    Ok(Head {
        sequence,
        hash,
        checkpointed: checkpoint.as_ref().map_or(0, |c| c.head.size),
        checkpoint: checkpoint.map(|c| c.head),
    })
}

fn read_tree_hashes(
    c: &mut impl GenericClient,
    indexes: &[u64],
) -> Result<Vec<[u8; 32]>, AuditError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<i64> = indexes.iter().map(|&i| i as i64).collect();
    let rows = c.query(
        "SELECT idx, hash FROM tree_hashes WHERE idx = ANY($1)",
        &[&wanted],
    )?;
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let (i, h): (i64, Vec<u8>) = (row.try_get(0)?, row.try_get(1)?);
        found.insert(i as u64, h);
    }
    indexes
        .iter()
        .map(|i| {
            found
                .get(i)
                .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
                .ok_or_else(|| {
                    AuditError::Tree(format!("stored hash {i} is missing or not 32 bytes"))
                })
        })
        .collect()
}

/// The folded names of `e`'s signers and organisations, one per line, for searches.
fn folded(e: &Entry) -> (String, String) {
    let fold = crate::policy::roles::fold;
    let lines = |pick: fn(&super::SignatureSummary) -> Option<&String>| {
        e.signatures
            .iter()
            .filter_map(pick)
            .map(|s| fold(s))
            .collect::<Vec<_>>()
            .join("\n")
    };
    (
        lines(|s| s.signer_common_name.as_ref()),
        lines(|s| s.signer_organization.as_ref()),
    )
}

/// A group commit's records, column by column, to insert as arrays in one statement.
#[derive(Default)]
struct Columns<'a> {
    sequence: Vec<i64>,
    time_ns: Vec<i64>,
    principal: Vec<&'a str>,
    peer: Vec<&'a str>,
    method: Vec<&'a str>,
    document_sha256: Vec<Option<&'a str>>,
    document_size: Vec<Option<i64>>,
    document_id: Vec<&'a str>,
    document_number: Vec<&'a str>,
    sender: Vec<&'a str>,
    extra: Vec<String>,
    signatures: Vec<String>,
    verdict: Vec<&'a str>,
    error: Vec<Option<&'a str>>,
    kyso_version: Vec<&'a str>,
    trust_fingerprint: Vec<&'a str>,
    previous_hash: Vec<&'a [u8]>,
    hash: Vec<&'a [u8]>,
    policy: Vec<Option<String>>,
    signers: Vec<String>,
    organizations: Vec<String>,
    number: Vec<String>,
    // Arrays of arrays do not UNNEST row by row: each record's certificates and serials
    // travel as one line each, split back in SQL.
    certificates: Vec<String>,
    serials: Vec<String>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, e: &'a Entry, place: &'a super::Place) {
        self.sequence.push(place.sequence as i64);
        self.time_ns.push(e.time.unix_timestamp_nanos() as i64);
        self.principal.push(&e.principal);
        self.peer.push(&e.peer);
        self.method.push(&e.method);
        self.document_sha256.push(e.document_sha256.as_deref());
        self.document_size.push(e.document_size.map(|n| n as i64));
        self.document_id.push(&e.metadata.document_id);
        self.document_number.push(&e.metadata.document_number);
        self.sender.push(&e.metadata.sender);
        self.extra
            .push(serde_json::to_string(&e.metadata.extra).unwrap_or_else(|_| "{}".into()));
        self.signatures
            .push(serde_json::to_string(&e.signatures).unwrap_or_else(|_| "[]".into()));
        self.verdict.push(&e.verdict);
        self.error.push(e.error.as_deref());
        self.kyso_version.push(&e.kyso_version);
        self.trust_fingerprint.push(&e.trust_fingerprint);
        self.previous_hash.push(&place.previous_hash[..]);
        self.hash.push(&place.hash[..]);
        self.policy.push(
            e.policy
                .as_ref()
                .and_then(|p| serde_json::to_string(p).ok()),
        );
        let (signers, organizations) = folded(e);
        self.signers.push(signers);
        self.organizations.push(organizations);
        self.number
            .push(crate::policy::roles::fold(&e.metadata.document_number));
        let lines = |pick: fn(&super::SignatureSummary) -> Option<&String>| {
            e.signatures
                .iter()
                .filter_map(pick)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        };
        self.certificates
            .push(lines(|s| s.certificate_sha256.as_ref()));
        self.serials.push(lines(|s| s.signer_serial.as_ref()));
    }
}

impl AuditStore for PgStore {
    fn head(&self) -> Result<Head, AuditError> {
        read_head(&mut *self.reader())
    }

    fn lowest_sequence(&self) -> Result<Option<i64>, AuditError> {
        Ok(self
            .reader()
            .query_one("SELECT MIN(sequence) FROM records", &[])?
            .try_get(0)?)
    }

    fn append(&self, entries: &[Entry], seal: &mut Seal<'_>) -> Result<Appended, AuditError> {
        let mut c = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut tx = c.transaction()?;
        // Taken before the head is read: another instance's commit waits, then extends
        // the tree after this one.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])?;
        let before = read_head(&mut tx)?;
        let (places, mut head) = before.extend(entries);
        {
            let mut c = Columns::default();
            for (e, place) in entries.iter().zip(&places) {
                c.push(e, place);
            }
            let params: [&(dyn ToSql + Sync); 24] = [
                &c.sequence,
                &c.time_ns,
                &c.principal,
                &c.peer,
                &c.method,
                &c.document_sha256,
                &c.document_size,
                &c.document_id,
                &c.document_number,
                &c.sender,
                &c.extra,
                &c.signatures,
                &c.verdict,
                &c.error,
                &c.kyso_version,
                &c.trust_fingerprint,
                &c.previous_hash,
                &c.hash,
                &c.policy,
                &c.signers,
                &c.organizations,
                &c.number,
                &c.certificates,
                &c.serials,
            ];
            tx.execute(
                &format!(
                    "INSERT INTO records ({COLUMNS}, signers_folded, organizations_folded, \
                     document_number_folded, certificates, serials) \
                     SELECT s, t, pr, pe, m, ds, dz, di, dn, se, ex, sg, v, er, kv, tf, ph, h, po, \
                            sf, of, nf, \
                            CASE WHEN ce = '' THEN '{{}}'::text[] ELSE string_to_array(ce, E'\\n') END, \
                            CASE WHEN sr = '' THEN '{{}}'::text[] ELSE string_to_array(sr, E'\\n') END \
                     FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
                                 $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], \
                                 $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
                                 $16::text[], $17::bytea[], $18::bytea[], $19::text[], \
                                 $20::text[], $21::text[], $22::text[], $23::text[], $24::text[]) \
                          AS u(s, t, pr, pe, m, ds, dz, di, dn, se, ex, sg, v, er, kv, tf, ph, h, po, \
                               sf, of, nf, ce, sr)"
                ),
                &params,
            )?;
        }
        let tx = RefCell::new(tx);
        let read = |indexes: &[u64]| read_tree_hashes(&mut *tx.borrow_mut(), indexes);
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
        let (indexes, hashes): (Vec<i64>, Vec<Vec<u8>>) =
            tree.written().map(|(i, h)| (i as i64, h.to_vec())).unzip();
        let mut tx = tx.into_inner();
        tx.execute(
            "INSERT INTO tree_hashes (idx, hash) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
            &[&indexes, &hashes],
        )?;
        if let Some(cp) = &checkpoint {
            tx.execute(
                "INSERT INTO tree_checkpoints (size, root, time_ns, note) VALUES ($1, $2, $3, $4)",
                &[
                    &(cp.head.size as i64),
                    &cp.head.root.as_slice(),
                    &(OffsetDateTime::now_utc().unix_timestamp_nanos() as i64),
                    &cp.note,
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
        read_tree_hashes(&mut *self.reader(), indexes)
    }

    fn tree_hash_range(&self, from: u64, to: u64) -> Result<Vec<(u64, [u8; 32])>, AuditError> {
        let rows = self.reader().query(
            "SELECT idx, hash FROM tree_hashes WHERE idx >= $1 AND idx < $2 ORDER BY idx",
            &[&(from as i64), &(to.min(i64::MAX as u64) as i64)],
        )?;
        rows.iter()
            .map(|r| {
                let h: Vec<u8> = r.try_get(1)?;
                // A hash of another length differs from every recomputed one.
                Ok((
                    r.try_get::<_, i64>(0)? as u64,
                    h.try_into().unwrap_or([0; 32]),
                ))
            })
            .collect()
    }

    fn tree_checkpoints(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<SignedCheckpoint>, AuditError> {
        let rows = self.reader().query(
            "SELECT size, root, note FROM tree_checkpoints WHERE size >= $1 AND size <= $2 ORDER BY size",
            &[&(from as i64), &to.map_or(i64::MAX, |t| t.min(i64::MAX as u64) as i64)],
        )?;
        rows.iter().map(read_tree_checkpoint).collect()
    }

    fn latest_tree_checkpoint(&self) -> Result<Option<SignedCheckpoint>, AuditError> {
        self.reader()
            .query_opt(
                "SELECT size, root, note FROM tree_checkpoints ORDER BY size DESC LIMIT 1",
                &[],
            )?
            .as_ref()
            .map(read_tree_checkpoint)
            .transpose()
    }

    fn origin(&self) -> Result<Option<String>, AuditError> {
        Ok(self
            .reader()
            .query_opt("SELECT value FROM log_meta WHERE name = 'origin'", &[])?
            .map(|r| r.get(0)))
    }

    fn claim_origin(&self, origin: &str) -> Result<String, AuditError> {
        let mut c = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        c.execute(
            "INSERT INTO log_meta (name, value) VALUES ('origin', $1) ON CONFLICT (name) DO NOTHING",
            &[&origin],
        )?;
        Ok(
            c.query_one("SELECT value FROM log_meta WHERE name = 'origin'", &[])?
                .try_get(0)?,
        )
    }

    fn get(&self, sequence: u64) -> Result<Option<Record>, AuditError> {
        let row = self.reader().query_opt(
            &format!("SELECT {COLUMNS} FROM records WHERE sequence = $1"),
            &[&(sequence.min(i64::MAX as u64) as i64)],
        )?;
        row.as_ref().map(read_row).transpose()
    }

    fn query(&self, q: &Query) -> Result<Vec<Record>, AuditError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut add = |clause: &str, v: Box<dyn ToSql + Sync>| {
            values.push(v);
            clauses.push(clause.replace('?', &format!("${}", values.len())));
        };
        let like = |s: &str| -> Box<dyn ToSql + Sync> {
            Box::new(format!(
                "%{}%",
                s.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            ))
        };
        let fold = crate::policy::roles::fold;
        if let Some(v) = &q.document_sha256 {
            add("document_sha256 = ?", Box::new(v.to_ascii_lowercase()));
        }
        if let Some(v) = &q.signer_name {
            add("signers_folded LIKE ?", like(&fold(v)));
        }
        if let Some(v) = &q.certificate_sha256 {
            add("? = ANY(certificates)", Box::new(v.to_ascii_lowercase()));
        }
        if let Some(v) = &q.signer_serial {
            add("? = ANY(serials)", Box::new(v.to_ascii_uppercase()));
        }
        if let Some(v) = &q.organization {
            add("organizations_folded LIKE ?", like(&fold(v)));
        }
        if let Some(v) = &q.verdict {
            add("verdict = ?", Box::new(v.to_ascii_uppercase()));
        }
        if let Some(v) = &q.caller {
            add("principal = ?", Box::new(v.clone()));
        }
        if let Some(v) = q.from {
            add("time_ns >= ?", Box::new(v.unix_timestamp_nanos() as i64));
        }
        if let Some(v) = q.to {
            add("time_ns <= ?", Box::new(v.unix_timestamp_nanos() as i64));
        }
        if let Some(v) = &q.document_number {
            add("document_number_folded = ?", Box::new(fold(v)));
        }
        if let Some(v) = q.before {
            add("sequence < ?", Box::new(v.min(i64::MAX as u64) as i64));
        }
        // Rows numbered outside 1..n are not records of the log (`verify_log` names them).
        add("sequence >= ?", Box::new(1i64));
        let sql = format!(
            "SELECT {COLUMNS} FROM records WHERE {} ORDER BY sequence DESC LIMIT {}",
            clauses.join(" AND "),
            q.limit.max(1)
        );
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        let rows = self.reader().query(&sql, &params)?;
        rows.iter().map(read_row).collect()
    }

    fn scan(
        &self,
        from: u64,
        to: Option<u64>,
        visit: &mut dyn FnMut(Result<Record, AuditError>) -> bool,
    ) -> Result<(), AuditError> {
        let rows = self.reader().query(
            &format!(
                "SELECT {COLUMNS} FROM records WHERE sequence >= $1 AND sequence <= $2 ORDER BY sequence"
            ),
            &[
                &(from.min(i64::MAX as u64) as i64),
                &to.map_or(i64::MAX, |t| t.min(i64::MAX as u64) as i64),
            ],
        )?;
        for row in &rows {
            if !visit(read_row(row)) {
                break;
            }
        }
        Ok(())
    }

    /// A PostgreSQL log was never a hash chain alone: it has no checkpoints of one.
    fn checkpoints(&self, _: u64, _: Option<u64>) -> Result<Vec<Checkpoint>, AuditError> {
        Ok(Vec::new())
    }

    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        Ok(None)
    }
}
