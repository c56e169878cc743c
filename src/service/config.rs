//! The service's configuration: a TOML file (`--config FILE` or `KYSO_CONFIG`), then
//! environment variables, then flags, each overriding the one before. With nothing at all:
//! listen on 127.0.0.1:50051, audit log under `./kyso-data/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::names::UnknownName;
use crate::policy::{Expect, PolicyChoice};
use crate::verify::{RevocationMode, Settings};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for kyso.
    #[error("{path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        #[source]
        source: toml::de::Error,
    },
    /// An environment variable names no known value.
    #[error("{variable}")]
    Env {
        /// The variable.
        variable: &'static str,
        /// What it names, and what it could.
        #[source]
        source: UnknownName,
    },
    /// `KYSO_LISTEN` is not an address.
    #[error("KYSO_LISTEN {given:?}")]
    Listen {
        /// Its value.
        given: String,
        /// Why.
        #[source]
        source: std::net::AddrParseError,
    },
    /// `--no-auth` on an address other than loopback.
    #[error("--no-auth is refused on {listen}: without authentication kyso only listens on a loopback address")]
    NoAuthOffLoopback {
        /// The address.
        listen: SocketAddr,
    },
    /// Neither tokens nor client certificates are configured.
    #[error("no [[auth.tokens]] (or [[auth.certificates]]) are configured: add some, or pass --no-auth to serve on a loopback address without authentication")]
    NoCredentials,
    /// A token's `sha256` is not 64 hex digits.
    #[error("the token of {principal} is not a hex SHA-256 (64 hex digits)")]
    TokenHash {
        /// Whose token.
        principal: String,
    },
    /// Client certificates are configured without mutual TLS.
    #[error("[[auth.certificates]] needs [tls] with client_ca (mutual TLS)")]
    CertificatesNeedMutualTls,
    /// The idle timeout would close connections between two keepalive pings.
    #[error("idle_timeout_seconds ({idle}) must be longer than keepalive_seconds ({keepalive}): a long verification's connection would be closed as idle between two pings")]
    IdleBeforeKeepalive {
        /// `idle_timeout_seconds`.
        idle: u64,
        /// `keepalive_seconds`.
        keepalive: u64,
    },
    /// The budget of request bytes is smaller than one document.
    #[error("max_request_bytes_in_flight ({budget}) is below max_document_bytes ({document}): no document of the largest size could be received")]
    BudgetBelowDocument {
        /// `max_request_bytes_in_flight`.
        budget: usize,
        /// `max_document_bytes`.
        document: usize,
    },
}

/// A role a principal may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May submit documents (VerificationService).
    Verifier,
    /// May read and check the audit log (AuditService).
    Auditor,
    /// Everything.
    Admin,
}

/// A bearer token, stored as the SHA-256 of the token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Hex SHA-256 of the token (`printf %s TOKEN | sha256sum`).
    pub sha256: String,
    /// The name records give the caller.
    pub principal: String,
    /// What it may call.
    pub roles: Vec<Role>,
}

/// Roles of clients that present a certificate (mutual TLS) and no token: matched on the
/// certificate's subject as kyso prints it (`C=VN, O=…, CN=…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificateEntry {
    /// The certificate's subject as kyso prints it.
    pub subject: String,
    /// What it may call.
    pub roles: Vec<Role>,
}

/// Who may call (`[auth]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer tokens (`[[auth.tokens]]`).
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// Client certificates under mutual TLS (`[[auth.certificates]]`).
    #[serde(default)]
    pub certificates: Vec<ClientCertificateEntry>,
}

/// TLS for the service (`[tls]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM.
    pub cert: PathBuf,
    /// The server's private key, PEM.
    pub key: PathBuf,
    /// CA certificates (PEM) of client certificates: when set, clients must present one.
    pub client_ca: Option<PathBuf>,
}

/// Everything `kyso serve` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The address to listen on for gRPC (default `127.0.0.1:50051`).
    pub listen: SocketAddr,
    /// The address to listen on for HTTP/1.1 and HTTP/2: the JSON API, health and metrics
    /// (default `127.0.0.1:8080`).
    pub http_listen: SocketAddr,
    /// Where the audit log, its key and the trust store live (default `kyso-data`).
    pub data_dir: PathBuf,
    /// The name of the audit log in its signed checkpoints and its verifier key, a
    /// schema-less URL such as `kyso.tinhuy.example.gov.vn/audit` (default
    /// `kyso.localhost/audit`). A log keeps the name it was first given.
    pub audit_origin: Option<String>,
    /// Where the audit log is kept: `sqlite:PATH` or a `postgres://` URL shared by several
    /// instances (default: `data_dir/audit.sqlite3`). The checkpoint key stays in
    /// `data_dir`.
    pub audit_store: Option<String>,
    /// Trust anchor files or folders.
    pub trust: Vec<PathBuf>,
    /// Intermediate CA files or folders.
    pub intermediates: Vec<PathBuf>,
    /// CRL files or folders.
    pub crl: Vec<PathBuf>,
    /// `offline`, `soft-fail`, `hard-fail` or `require` (README, "Revocation").
    pub revocation: RevocationMode,
    /// Timeout of each online fetch, in seconds.
    pub fetch_timeout_seconds: u64,
    /// Largest document accepted, in bytes.
    pub max_document_bytes: usize,
    /// Verifications running at once (CPU work, off the async reactor); 0: one per core.
    pub max_concurrent_verifications: usize,
    /// Requests served at once per connection.
    pub max_concurrent_requests_per_connection: usize,
    /// Most bytes of request bodies the service holds at once, over every connection: a
    /// request whose bytes would go over is refused (RESOURCE_EXHAUSTED) rather than held.
    pub max_request_bytes_in_flight: usize,
    /// Most connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A connection without a byte either way for this long is closed, in seconds.
    pub idle_timeout_seconds: u64,
    /// HTTP/2 keepalive: a ping after this many seconds without a frame from the client, and
    /// the connection closed when the ping is not answered within 20 s.
    pub keepalive_seconds: u64,
    /// Upper bound of any request, in seconds (a shorter client deadline wins).
    pub request_timeout_seconds: u64,
    /// Serve without authentication: every caller gets every role. Refused unless `listen`
    /// is a loopback address.
    pub no_auth: bool,
    /// Who may call, with which roles.
    pub auth: AuthConfig,
    /// TLS, when set.
    pub tls: Option<TlsConfig>,
    /// The trust store folder (default: `data_dir/trust`); each of its profiles can be
    /// chosen per request.
    pub trust_store: Option<PathBuf>,
    /// Trust profiles added to `trust` for requests that name none (`trust_profile = "bcy"`
    /// is read as a list of one).
    #[serde(alias = "trust_profile", deserialize_with = "one_or_many")]
    pub trust_profiles: Vec<String>,
    /// `decree-30` or `none`, for requests that name none.
    pub policy: PolicyChoice,
    /// `issued`, `attachment`, `copy` or `any`, for requests that name none.
    pub expect: Expect,
    /// The operator's roles file (README, "Roles").
    pub roles: Option<PathBuf>,
}

/// A string, or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("kyso-data"),
            audit_origin: None,
            audit_store: None,
            trust: Vec::new(),
            intermediates: Vec::new(),
            crl: Vec::new(),
            revocation: RevocationMode::SoftFail,
            fetch_timeout_seconds: 5,
            max_document_bytes: 64 << 20,
            max_concurrent_verifications: 0,
            max_concurrent_requests_per_connection: 64,
            max_request_bytes_in_flight: 256 << 20,
            max_connections: 10_000,
            idle_timeout_seconds: 300,
            keepalive_seconds: 60,
            request_timeout_seconds: 120,
            no_auth: false,
            auth: AuthConfig::default(),
            tls: None,
            trust_store: None,
            trust_profiles: Vec::new(),
            policy: PolicyChoice::Decree30,
            expect: Expect::Issued,
            roles: None,
        }
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Applies `KYSO_LISTEN`, `KYSO_HTTP_LISTEN`, `KYSO_DATA_DIR`, `KYSO_AUDIT_ORIGIN`, `KYSO_AUDIT_STORE`, `KYSO_TRUST`, `KYSO_INTERMEDIATES`,
    /// `KYSO_CRL` (lists separated by `:`), `KYSO_REVOCATION` from `env`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("KYSO_LISTEN") {
            self.listen = v
                .parse()
                .map_err(|source| ConfigError::Listen { given: v, source })?;
        }
        if let Some(v) = env("KYSO_HTTP_LISTEN") {
            self.http_listen = v
                .parse()
                .map_err(|source| ConfigError::Listen { given: v, source })?;
        }
        if let Some(v) = env("KYSO_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("KYSO_AUDIT_ORIGIN") {
            self.audit_origin = Some(v);
        }
        if let Some(v) = env("KYSO_AUDIT_STORE") {
            self.audit_store = Some(v);
        }
        let list = |v: String| {
            v.split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        };
        if let Some(v) = env("KYSO_TRUST") {
            self.trust = list(v);
        }
        if let Some(v) = env("KYSO_INTERMEDIATES") {
            self.intermediates = list(v);
        }
        if let Some(v) = env("KYSO_CRL") {
            self.crl = list(v);
        }
        let named = |variable: &'static str| move |source| ConfigError::Env { variable, source };
        if let Some(v) = env("KYSO_REVOCATION") {
            self.revocation = v.parse().map_err(named("KYSO_REVOCATION"))?;
        }
        if let Some(v) = env("KYSO_TRUST_STORE") {
            self.trust_store = Some(v.into());
        }
        if let Some(v) = env("KYSO_TRUST_PROFILE") {
            self.trust_profiles = v
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = env("KYSO_POLICY") {
            self.policy = v.parse().map_err(named("KYSO_POLICY"))?;
        }
        if let Some(v) = env("KYSO_EXPECT") {
            self.expect = v.parse().map_err(named("KYSO_EXPECT"))?;
        }
        Ok(())
    }

    /// Checks what can be checked before starting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.idle_timeout_seconds <= self.keepalive_seconds.max(1) {
            return Err(ConfigError::IdleBeforeKeepalive {
                idle: self.idle_timeout_seconds,
                keepalive: self.keepalive_seconds,
            });
        }
        if self.max_request_bytes_in_flight < self.max_document_bytes {
            return Err(ConfigError::BudgetBelowDocument {
                budget: self.max_request_bytes_in_flight,
                document: self.max_document_bytes,
            });
        }
        for listen in [self.listen, self.http_listen] {
            if self.no_auth && !listen.ip().is_loopback() {
                return Err(ConfigError::NoAuthOffLoopback { listen });
            }
        }
        if !self.no_auth && self.auth.tokens.is_empty() && self.auth.certificates.is_empty() {
            return Err(ConfigError::NoCredentials);
        }
        for t in &self.auth.tokens {
            if t.sha256.len() != 64 || hex::decode(&t.sha256).is_err() {
                return Err(ConfigError::TokenHash {
                    principal: t.principal.clone(),
                });
            }
        }
        if !self.auth.certificates.is_empty()
            && self.tls.as_ref().is_none_or(|t| t.client_ca.is_none())
        {
            return Err(ConfigError::CertificatesNeedMutualTls);
        }
        Ok(())
    }

    /// The settings the verification context is built from ([`crate::Context::from_settings`]);
    /// fetched revocation data is cached under the data directory.
    pub fn settings(&self) -> Settings {
        Settings {
            trust: self.trust.clone(),
            intermediates: self.intermediates.clone(),
            trust_profiles: self.trust_profiles.clone(),
            trust_store: self.trust_store(),
            crl: self.crl.clone(),
            revocation: self.revocation,
            fetch_timeout: std::time::Duration::from_secs(self.fetch_timeout_seconds),
            cache_dir: Some(self.data_dir.join("fetch-cache")),
            policy: self.policy,
            expect: self.expect,
            roles: self.roles.clone(),
        }
    }

    /// The trust store the profiles come from.
    pub fn trust_store(&self) -> crate::trust::profiles::Store {
        crate::trust::profiles::Store::at(self.trust_store.as_deref(), &self.data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_flags_env_and_file() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(c.data_dir, PathBuf::from("kyso-data"));
        let mut c: Config = toml::from_str(
            "listen = \"0.0.0.0:6000\"\n[[auth.tokens]]\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\nprincipal = \"dms\"\nroles = [\"verifier\"]\n",
        )
        .expect("parses");
        assert_eq!(c.auth.tokens[0].roles, vec![Role::Verifier]);
        c.validate().expect("valid");
        c.apply_env(|k| (k == "KYSO_DATA_DIR").then(|| "/srv/kyso".to_owned()))
            .expect("env");
        assert_eq!(c.data_dir, PathBuf::from("/srv/kyso"));
        c.no_auth = true;
        let e = c.validate().expect_err("no-auth on 0.0.0.0");
        assert!(e.to_string().contains("loopback"), "{e}");
        c.no_auth = false;
        c.max_request_bytes_in_flight = c.max_document_bytes - 1;
        let e = c.validate().expect_err("a budget under one document");
        assert!(e.to_string().contains("below max_document_bytes"), "{e}");
        let e = toml::from_str::<Config>("listen = 5").expect_err("bad type");
        assert!(e.to_string().contains("listen"), "{e}");
    }

    #[test]
    fn policy_and_trust_profiles_from_file_and_env() {
        let c: Config =
            toml::from_str("trust_profile = \"bcy\"\npolicy = \"none\"\n").expect("parses");
        assert_eq!(c.trust_profiles, vec!["bcy".to_owned()]);
        let c: Config = toml::from_str("trust_profiles = [\"bcy\", \"neac\"]\nexpect = \"any\"\n")
            .expect("parses");
        assert_eq!(c.trust_profiles.len(), 2);
        assert_eq!((c.policy, c.expect), (PolicyChoice::Decree30, Expect::Any));
        let e = toml::from_str::<Config>("policy = \"decree-31\"\n").expect_err("no such policy");
        assert!(
            e.to_string().contains("unknown policy \"decree-31\""),
            "{e}"
        );
        let mut c = Config::default();
        c.apply_env(|k| match k {
            "KYSO_TRUST_PROFILE" => Some("bcy,neac".to_owned()),
            _ => None,
        })
        .expect("env");
        assert_eq!(c.trust_profiles, vec!["bcy".to_owned(), "neac".to_owned()]);
        let e = c
            .apply_env(|k| (k == "KYSO_EXPECT").then(|| "sideways".to_owned()))
            .expect_err("unknown profile");
        assert_eq!(e.to_string(), "KYSO_EXPECT");
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some("unknown profile \"sideways\": issued, attachment, copy, any")
        );
    }
}
