//! `kyso serve`: the configuration file, then the environment, then flags; then the gRPC
//! service until SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::{exit, report};
use kyso::policy::{Expect, PolicyChoice};
use kyso::service::config::Config;
use kyso::service::ServeError;
use kyso::verify::RevocationMode;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration (README, "Service configuration"); also `KYSO_CONFIG`.
    #[arg(long, value_name = "FILE", env = "KYSO_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on for gRPC (default 127.0.0.1:50051).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Address to listen on for HTTP: the JSON API, /healthz, /readyz, /metrics (default
    /// 127.0.0.1:8080; also KYSO_HTTP_LISTEN).
    #[arg(long = "http-listen", value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// Where the audit log and its key live (default ./kyso-data).
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The audit log's name in its checkpoints, e.g. kyso.example.gov.vn/audit (default
    /// kyso.localhost/audit; also KYSO_AUDIT_ORIGIN). A log keeps its first name.
    #[arg(long = "audit-origin", value_name = "NAME")]
    audit_origin: Option<String>,
    /// The audit log's store: sqlite:PATH or a postgres:// URL that several instances
    /// share (default: DIR/audit.sqlite3; also KYSO_AUDIT_STORE).
    #[arg(long = "audit-store", value_name = "URL")]
    audit_store: Option<String>,
    /// Trust anchors, as in `kyso verify`. Repeatable; replaces the configuration's list.
    #[arg(long, value_name = "PATH")]
    trust: Vec<PathBuf>,
    /// Intermediate CA certificates. Repeatable; replaces the configuration's list.
    #[arg(long, value_name = "PATH")]
    intermediates: Vec<PathBuf>,
    /// CRL files or folders. Repeatable; replaces the configuration's list.
    #[arg(long, value_name = "PATH")]
    crl: Vec<PathBuf>,
    /// offline, soft-fail (default), hard-fail or require.
    #[arg(long, value_name = "MODE")]
    revocation: Option<RevocationMode>,
    /// Serve without authentication (refused on a non-loopback address).
    #[arg(long = "no-auth")]
    no_auth: bool,
    /// The log on stderr: one line per request and per internal error, as text (default)
    /// or as JSON objects (also KYSO_LOG_FORMAT).
    #[arg(
        long = "log-format",
        value_name = "FORMAT",
        env = "KYSO_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Trust a profile of the trust store for requests that name none. Repeatable;
    /// replaces the configuration's list.
    #[arg(long = "trust-profile", value_name = "NAME")]
    trust_profiles: Vec<String>,
    /// The trust store folder (default: DATA_DIR/trust).
    #[arg(long = "trust-store", value_name = "DIR")]
    trust_store: Option<PathBuf>,
    /// The document rules for requests that name none: decree-30 (default) or none.
    #[arg(long, value_name = "POLICY")]
    policy: Option<PolicyChoice>,
    /// The profile documents must be when a request does not say: issued (default),
    /// attachment, copy or any.
    #[arg(long, value_name = "PROFILE")]
    expect: Option<Expect>,
    /// The operator's roles file (TOML).
    #[arg(long, value_name = "FILE")]
    roles: Option<PathBuf>,
}

impl ServeArgs {
    /// The configuration: the file's, then the environment's, then these flags'.
    fn config(self) -> Result<Config, kyso::service::ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        if let Some(l) = self.listen {
            config.listen = l;
        }
        if let Some(l) = self.http_listen {
            config.http_listen = l;
        }
        if let Some(d) = self.data_dir {
            config.data_dir = d;
        }
        if let Some(o) = self.audit_origin {
            config.audit_origin = Some(o);
        }
        if let Some(s) = self.audit_store {
            config.audit_store = Some(s);
        }
        if !self.trust.is_empty() {
            config.trust = self.trust;
        }
        if !self.intermediates.is_empty() {
            config.intermediates = self.intermediates;
        }
        if !self.crl.is_empty() {
            config.crl = self.crl;
        }
        if let Some(r) = self.revocation {
            config.revocation = r;
        }
        config.no_auth |= self.no_auth;
        if !self.trust_profiles.is_empty() {
            config.trust_profiles = self.trust_profiles;
        }
        if self.trust_store.is_some() {
            config.trust_store = self.trust_store;
        }
        if let Some(p) = self.policy {
            config.policy = p;
        }
        if let Some(e) = self.expect {
            config.expect = e;
        }
        if self.roles.is_some() {
            config.roles = self.roles;
        }
        Ok(config)
    }
}

/// How `kyso serve` writes its log.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// `kyso serve`.
pub fn serve(args: ServeArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let log_format = args.log_format;
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            report(err, &e);
            return exit::USAGE;
        }
    };
    // One line per request (target kyso::request: principal, method, status, duration,
    // document SHA-256, verdict, audit record id), and what the service does not tell its
    // callers (the causes of internal errors), on stderr.
    let log = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match log_format {
        LogFormat::Text => log.try_init(),
        LogFormat::Json => log.json().try_init(),
    };
    let Some(rt) = super::runtime(err) else {
        return exit::OS_ERROR;
    };
    // The store as the banner names it: a PostgreSQL URL without its credentials.
    let audit_log = match config
        .audit_store
        .as_deref()
        .map(kyso::audit::Location::parse)
    {
        Some(Ok(location)) => location.to_string(),
        _ => config.data_dir.display().to_string(),
    };
    let result = rt.block_on(async {
        let running = kyso::service::start(config).await?;
        let scheme = if running.http_tls { "https" } else { "http" };
        let _ = writeln!(
            out,
            "kyso {} serving gRPC on {} and HTTP on {scheme}://{} (audit log in {})",
            env!("CARGO_PKG_VERSION"),
            running.addr,
            running.http_addr,
            audit_log
        );
        let _ = out.flush();
        running.stop_on(shutdown_signal()).await
    });
    match result {
        Ok(()) => {
            let _ = writeln!(out, "kyso: stopped; every answered request is recorded");
            exit::VALID
        }
        Err(e) => {
            report(err, &e);
            match e {
                ServeError::Config(_)
                | ServeError::Context(_)
                | ServeError::TrustStore(_)
                | ServeError::TlsFile { .. }
                | ServeError::Tls(_)
                | ServeError::HttpTls(_) => exit::USAGE,
                ServeError::Listen { .. } => exit::UNAVAILABLE,
                _ => exit::OS_ERROR,
            }
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
