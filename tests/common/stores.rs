//! The two audit stores, for tests that run against both: SQLite in a temporary directory,
//! and PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`, as on the project's
//! machines and in `.ci/run`), each test in a fresh schema dropped afterwards.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use kyso::audit::{AuditStore, CheckpointKey, Entry, Location, Metadata};

/// The `n`th record of a test log: a verification of a document numbered `n`-BC/TU.
pub fn entry(n: u64) -> Entry {
    Entry {
        time: time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + n as i64).expect("time"),
        principal: "dms-haugiang".into(),
        peer: "127.0.0.1:1".into(),
        method: "/kyso.v1.VerificationService/VerifyDocument".into(),
        document_sha256: Some(format!("{n:064x}")),
        document_size: Some(1000 + n),
        metadata: Metadata {
            document_number: format!("{n}-BC/TU"),
            ..Default::default()
        },
        signatures: Vec::new(),
        verdict: "VALID".into(),
        error: None,
        kyso_version: "test".into(),
        trust_fingerprint: "fp".into(),
        policy: None,
    }
}

/// The server the PostgreSQL tests use; `KYSO_TEST_POSTGRES` names another.
pub fn postgres_server() -> String {
    std::env::var("KYSO_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh log's place: its data directory (the checkpoint key, and SQLite's file) and its
/// store.
pub struct Backend {
    dir: tempfile::TempDir,
    schema: Option<String>,
}

impl Backend {
    /// A SQLite log.
    pub fn sqlite() -> Backend {
        Backend {
            dir: tempfile::tempdir().expect("temporary directory"),
            schema: None,
        }
    }

    /// A PostgreSQL log in a schema of its own.
    pub fn postgres() -> Backend {
        let schema = format!(
            "kyso_test_{}_{}",
            std::process::id(),
            hex::encode(openssl::sha::sha256(
                format!(
                    "{:?}{:?}",
                    std::thread::current().id(),
                    std::time::Instant::now()
                )
                .as_bytes()
            ))[..12]
                .to_owned()
        );
        let mut admin = postgres::Client::connect(&postgres_server(), postgres::NoTls)
            .expect("PostgreSQL on 127.0.0.1:5432 (start it: .ci/run does)");
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("a schema");
        Backend {
            dir: tempfile::tempdir().expect("temporary directory"),
            schema: Some(schema),
        }
    }

    /// A new log of the same kind.
    pub fn fresh(&self) -> Backend {
        match self.schema {
            None => Backend::sqlite(),
            Some(_) => Backend::postgres(),
        }
    }

    /// The PostgreSQL schema the log is in (none for SQLite).
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The store's location, as `--audit-store` takes it.
    pub fn url(&self) -> String {
        match &self.schema {
            None => format!("sqlite:{}", self.dir.path().join("audit.sqlite3").display()),
            Some(schema) => {
                let server = postgres_server();
                let joiner = if server.contains('?') { '&' } else { '?' };
                format!("{server}{joiner}options=-c%20search_path%3D{schema}")
            }
        }
    }

    /// Opens the store (a new connection each time).
    pub fn open(&self) -> Arc<dyn AuditStore> {
        Location::parse(&self.url())
            .expect("location")
            .open()
            .expect("store")
    }

    /// The checkpoint key, created at first use.
    pub fn key(&self) -> CheckpointKey {
        CheckpointKey::load_or_create(&self.dir.path().join("audit-key.pem")).expect("key")
    }

    /// Runs `statements` on the database, as someone with write access to it would.
    pub fn sql(&self, statements: &str) {
        match &self.schema {
            None => rusqlite::Connection::open(self.dir.path().join("audit.sqlite3"))
                .expect("database")
                .execute_batch(statements)
                .expect("statements"),
            Some(_) => postgres::Client::connect(&self.url(), postgres::NoTls)
                .expect("database")
                .batch_execute(statements)
                .expect("statements"),
        }
    }

    /// `bytes` as an SQL literal of the database's binary type.
    pub fn blob(&self, bytes: &[u8]) -> String {
        match &self.schema {
            None => format!("X'{}'", hex::encode(bytes)),
            Some(_) => format!("'\\x{}'::bytea", hex::encode(bytes)),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            if let Ok(mut admin) = postgres::Client::connect(&postgres_server(), postgres::NoTls) {
                let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
    }
}

/// Runs each named test (a function taking a [`Backend`]) on both stores: `sqlite::name`
/// in every `cargo test`, `postgres::name` ignored there and run by `.ci/run`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(super::stores::Backend::sqlite())
            })*
        }
        mod postgres {
            $(#[test]
            #[ignore = "needs PostgreSQL on 127.0.0.1:5432 (.ci/run starts it and runs these)"]
            fn $name() {
                super::$name(super::stores::Backend::postgres())
            })*
        }
    };
}
