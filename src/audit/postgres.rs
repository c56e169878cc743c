//! The shared audit store: PostgreSQL, for several kyso instances that keep one log.
//!
//! The schema comes from embedded migrations (`kyso_schema`), applied under an advisory
//! lock so that instances starting together apply each once. An append runs in one
//! transaction that first takes a transaction-scoped advisory lock ([`APPEND_LOCK`]) and
//! only then reads the head: every instance's group commit waits for the one before and
//! extends the tree after it, so the log never forks (the records' primary key would refuse
//! a fork anyway). Records, tree hashes and the checkpoint go in as one statement each
//! (`UNNEST` of arrays), and the statements of a step are pipelined, so a group commit costs
//! three round trips whatever its size. Names, organisations and document numbers are stored
//! folded beside the record (without case or diacritics, [`crate::policy::roles::fold`]) for
//! the same searches as the SQLite store.
//!
//! The driver is `tokio-postgres`, on a runtime of its own with one worker (the store's
//! callers are blocking threads: the group-commit writer and `spawn_blocking`). One
//! connection writes, with its statements prepared once, and is made again when it closes;
//! reads come from a small `deadpool-postgres` pool with cached statements. Connections are
//! plain TCP: PostgreSQL on the same host or network segment (TLS to the database is not
//! built).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::tree::{self, SignedCheckpoint, TreeHead};
use super::{
    Appended, AuditError, AuditStore, Checkpoint, Corruption, Entry, Head, Metadata, Query, Record,
    Seal,
};

/// The advisory lock every append takes (an arbitrary constant: "kyso" in ASCII).
const APPEND_LOCK: i64 = 0x6b79_736f;
/// The advisory lock the migrations take.
const MIGRATE_LOCK: i64 = 0x6b79_736f + 1;
/// Connections the readers (auditors' queries, proofs, the log check) share.
const READERS: usize = 4;
/// How long a connection may take to open, and a reader to wait for a free one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READER_WAIT: Duration = Duration::from_secs(30);

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
    /// Drives the connections; shut down without waiting when the store is dropped.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    config: tokio_postgres::Config,
    writer: Mutex<Option<Writer>>,
    readers: Pool,
}

/// The writing connection and the statements an append runs, prepared once.
struct Writer {
    client: Client,
    lock: Statement,
    last: Statement,
    latest: Statement,
    insert: Statement,
    read_hashes: Statement,
    write_hashes: Statement,
    checkpoint: Statement,
}

const LAST_RECORD: &str = "SELECT sequence, hash FROM records ORDER BY sequence DESC LIMIT 1";
const LATEST_CHECKPOINT: &str =
    "SELECT size, root, note FROM tree_checkpoints ORDER BY size DESC LIMIT 1";
const READ_HASHES: &str = "SELECT idx, hash FROM tree_hashes WHERE idx = ANY($1)";

impl PgStore {
    /// Connects to `url` and migrates the schema.
    pub fn connect(url: &str) -> Result<PgStore, AuditError> {
        let mut config: tokio_postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kyso-postgres")
            .enable_all()
            .build()
            .map_err(AuditError::PostgresDriver)?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let readers = Pool::builder(manager)
            .max_size(READERS)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(READER_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| AuditError::PostgresDriver(std::io::Error::other(e)))?;
        let store = PgStore {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            config,
            writer: Mutex::new(None),
            readers,
        };
        let writer = store.block_on(Writer::connect(&store.config))?;
        *store.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
        Ok(store)
    }

    fn block_on<F: std::future::Future>(&self, work: F) -> F::Output {
        self.handle.block_on(work)
    }

    /// Runs `work` on the writing connection, connecting again first if it closed. After a
    /// failure the transaction is rolled back; a connection that cannot is dropped.
    fn with_writer<T>(
        &self,
        work: impl FnOnce(&Writer) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let mut slot = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let writer = match slot.take() {
            Some(w) if !w.client.is_closed() => w,
            _ => self.block_on(Writer::connect(&self.config))?,
        };
        let done = work(&writer);
        if done.is_err()
            && self
                .block_on(writer.client.batch_execute("ROLLBACK"))
                .is_err()
        {
            return done;
        }
        *slot = Some(writer);
        done
    }

    /// Runs `sql` on a reader.
    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, AuditError> {
        self.block_on(async {
            let c = self.readers.get().await?;
            let statement = c.prepare_cached(sql).await?;
            Ok(c.query(&statement, params).await?)
        })
    }

    fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, AuditError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which an async caller may not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Writer {
    async fn connect(config: &tokio_postgres::Config) -> Result<Writer, AuditError> {
        let (mut client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the audit store's PostgreSQL connection ended");
            }
        });
        migrate(&mut client).await?;
        let insert = insert_records();
        let (lock, last, latest, insert, read_hashes, write_hashes, checkpoint) = tokio::try_join!(
            client.prepare("SELECT pg_advisory_xact_lock($1)"),
            client.prepare(LAST_RECORD),
            client.prepare(LATEST_CHECKPOINT),
            client.prepare(&insert),
            client.prepare(READ_HASHES),
            client.prepare(
                "INSERT INTO tree_hashes (idx, hash) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])"
            ),
            client.prepare(
                "INSERT INTO tree_checkpoints (size, root, time_ns, note) VALUES ($1, $2, $3, $4)"
            ),
        )?;
        Ok(Writer {
            client,
            lock,
            last,
            latest,
            insert,
            read_hashes,
            write_hashes,
            checkpoint,
        })
    }
}

async fn migrate(c: &mut Client) -> Result<(), AuditError> {
    let tx = c.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS kyso_schema (version INT NOT NULL)")
        .await?;
    let version: Option<i32> = tx
        .query_opt("SELECT version FROM kyso_schema", &[])
        .await?
        .map(|r| r.get(0));
    let version = version.map_or(0, |v| usize::try_from(v).unwrap_or(usize::MAX));
    if version > MIGRATIONS.len() {
        return Err(AuditError::NewerSchema {
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for sql in MIGRATIONS.iter().skip(version) {
        tx.batch_execute(sql).await?;
    }
    tx.execute("DELETE FROM kyso_schema", &[]).await?;
    tx.execute(
        "INSERT INTO kyso_schema (version) VALUES ($1)",
        &[&(MIGRATIONS.len() as i32)],
    )
    .await?;
    tx.commit().await?;
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

/// The head from the last record and the latest checkpoint (the rows of [`LAST_RECORD`]
/// and [`LATEST_CHECKPOINT`]).
fn head_from(last: Option<Row>, latest: Option<Row>) -> Result<Head, AuditError> {
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

/// The stored hashes at `indexes`, in that order, from rows of [`READ_HASHES`].
fn pick_hashes(rows: &[Row], indexes: &[u64]) -> Result<Vec<[u8; 32]>, AuditError> {
    let mut found = HashMap::with_capacity(rows.len());
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

fn wanted(indexes: &[u64]) -> Vec<i64> {
    indexes.iter().map(|&i| i as i64).collect()
}

/// The statement that inserts a group commit's records from arrays, one per column.
fn insert_records() -> String {
    format!(
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
    )
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

impl Columns<'_> {
    /// The 24 arrays, in the order of [`insert_records`]'s parameters.
    fn params(&self) -> [&(dyn ToSql + Sync); 24] {
        [
            &self.sequence,
            &self.time_ns,
            &self.principal,
            &self.peer,
            &self.method,
            &self.document_sha256,
            &self.document_size,
            &self.document_id,
            &self.document_number,
            &self.sender,
            &self.extra,
            &self.signatures,
            &self.verdict,
            &self.error,
            &self.kyso_version,
            &self.trust_fingerprint,
            &self.previous_hash,
            &self.hash,
            &self.policy,
            &self.signers,
            &self.organizations,
            &self.number,
            &self.certificates,
            &self.serials,
        ]
    }
}

impl PgStore {
    /// One group commit on the writing connection, in three pipelined round trips: the
    /// transaction, the lock and the head; the records and the tree's right edge; the
    /// tree's new hashes, the checkpoint and the commit.
    fn append_on(
        &self,
        w: &Writer,
        entries: &[Entry],
        seal: &mut Seal<'_>,
    ) -> Result<Appended, AuditError> {
        let c = &w.client;
        // The lock is taken before the head is read: another instance's commit waits,
        // then extends the tree after this one.
        let (_, _, last, latest) = self.block_on(async {
            tokio::try_join!(
                c.batch_execute("BEGIN"),
                c.execute(&w.lock, &[&APPEND_LOCK]),
                c.query_opt(&w.last, &[]),
                c.query_opt(&w.latest, &[]),
            )
        })?;
        let before = head_from(last, latest)?;
        let (places, mut head) = before.extend(entries);
        let mut columns = Columns::default();
        for (e, place) in entries.iter().zip(&places) {
            columns.push(e, place);
        }
        let record_params = columns.params();
        let edge = wanted(&tree::edge_indexes(before.sequence));
        let edge_params: [&(dyn ToSql + Sync); 1] = [&edge];
        let (_, edge_rows) = self.block_on(async {
            tokio::try_join!(
                c.execute(&w.insert, &record_params),
                c.query(&w.read_hashes, &edge_params),
            )
        })?;
        let read = |indexes: &[u64]| match pick_hashes(&edge_rows, indexes) {
            Ok(hashes) => Ok(hashes),
            // Beyond the right edge (a check against an older checkpoint): read them.
            Err(_) => {
                let rows = self.block_on(c.query(&w.read_hashes, &[&wanted(indexes)]))?;
                pick_hashes(&rows, indexes)
            }
        };
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
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        // A failed insert aborts the transaction, and the COMMIT after it rolls back: the
        // insert's error is what this returns.
        let hash_params: [&(dyn ToSql + Sync); 2] = [&indexes, &hashes];
        self.block_on(async {
            let hashes = c.execute(&w.write_hashes, &hash_params);
            match &checkpoint {
                Some(cp) => {
                    let root = cp.head.root.as_slice();
                    let size = cp.head.size as i64;
                    let params: [&(dyn ToSql + Sync); 4] = [&size, &root, &now, &cp.note];
                    tokio::try_join!(
                        hashes,
                        c.execute(&w.checkpoint, &params),
                        c.batch_execute("COMMIT"),
                    )
                    .map(|_| ())
                }
                None => tokio::try_join!(hashes, c.batch_execute("COMMIT")).map(|_| ()),
            }
        })?;
        if let Some(cp) = &checkpoint {
            head.checkpointed = cp.head.size;
            head.checkpoint = Some(cp.head);
        }
        Ok(Appended {
            head,
            checkpoint,
            places,
        })
    }
}

fn to_i64(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

impl AuditStore for PgStore {
    fn head(&self) -> Result<Head, AuditError> {
        let (last, latest) = self.block_on(async {
            let c = self.readers.get().await?;
            let (a, b) = tokio::try_join!(
                c.prepare_cached(LAST_RECORD),
                c.prepare_cached(LATEST_CHECKPOINT)
            )?;
            Ok::<_, AuditError>(tokio::try_join!(
                c.query_opt(&a, &[]),
                c.query_opt(&b, &[])
            )?)
        })?;
        head_from(last, latest)
    }

    fn lowest_sequence(&self) -> Result<Option<i64>, AuditError> {
        match self.query_opt("SELECT MIN(sequence) FROM records", &[])? {
            Some(row) => Ok(row.try_get(0)?),
            None => Ok(None),
        }
    }

    fn append(&self, entries: &[Entry], seal: &mut Seal<'_>) -> Result<Appended, AuditError> {
        self.with_writer(|w| self.append_on(w, entries, seal))
    }

    fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, AuditError> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.query(READ_HASHES, &[&wanted(indexes)])?;
        pick_hashes(&rows, indexes)
    }

    fn tree_hash_range(&self, from: u64, to: u64) -> Result<Vec<(u64, [u8; 32])>, AuditError> {
        let rows = self.query(
            "SELECT idx, hash FROM tree_hashes WHERE idx >= $1 AND idx < $2 ORDER BY idx",
            &[&to_i64(from), &to_i64(to)],
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
        let rows = self.query(
            "SELECT size, root, note FROM tree_checkpoints WHERE size >= $1 AND size <= $2 ORDER BY size",
            &[&to_i64(from), &to.map_or(i64::MAX, to_i64)],
        )?;
        rows.iter().map(read_tree_checkpoint).collect()
    }

    fn latest_tree_checkpoint(&self) -> Result<Option<SignedCheckpoint>, AuditError> {
        self.query_opt(LATEST_CHECKPOINT, &[])?
            .as_ref()
            .map(read_tree_checkpoint)
            .transpose()
    }

    fn origin(&self) -> Result<Option<String>, AuditError> {
        match self.query_opt("SELECT value FROM log_meta WHERE name = 'origin'", &[])? {
            Some(row) => Ok(Some(row.try_get(0)?)),
            None => Ok(None),
        }
    }

    fn claim_origin(&self, origin: &str) -> Result<String, AuditError> {
        self.with_writer(|w| {
            let row = self.block_on(async {
                w.client
                    .execute(
                        "INSERT INTO log_meta (name, value) VALUES ('origin', $1) \
                         ON CONFLICT (name) DO NOTHING",
                        &[&origin],
                    )
                    .await?;
                w.client
                    .query_one("SELECT value FROM log_meta WHERE name = 'origin'", &[])
                    .await
            })?;
            Ok(row.try_get(0)?)
        })
    }

    fn get(&self, sequence: u64) -> Result<Option<Record>, AuditError> {
        let row = self.query_opt(
            &format!("SELECT {COLUMNS} FROM records WHERE sequence = $1"),
            &[&to_i64(sequence)],
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
            add("sequence < ?", Box::new(to_i64(v)));
        }
        // Rows numbered outside 1..n are not records of the log (`verify_log` names them).
        add("sequence >= ?", Box::new(1i64));
        // The limit is a parameter, so the statements cached are one per set of filters.
        values.push(Box::new(q.limit.max(1) as i64));
        let sql = format!(
            "SELECT {COLUMNS} FROM records WHERE {} ORDER BY sequence DESC LIMIT ${}",
            clauses.join(" AND "),
            values.len()
        );
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        let rows = self.query(&sql, &params)?;
        rows.iter().map(read_row).collect()
    }

    fn scan(
        &self,
        from: u64,
        to: Option<u64>,
        visit: &mut dyn FnMut(Result<Record, AuditError>) -> bool,
    ) -> Result<(), AuditError> {
        let rows = self.query(
            &format!(
                "SELECT {COLUMNS} FROM records WHERE sequence >= $1 AND sequence <= $2 ORDER BY sequence"
            ),
            &[&to_i64(from), &to.map_or(i64::MAX, to_i64)],
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
