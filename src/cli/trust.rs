//! `kyso trust …`: the operator's trust profiles (README, "Trust profiles"). `add` and
//! `fetch` accept into the trust store only what is pinned for the profile; `list` shows
//! it; `check` says whether a certificate chains to a profile, and why not.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use time::OffsetDateTime;

use super::exit;
use kyso::revocation::fetch::{Fetch, HttpFetcher, MAX_SMALL_BYTES};
use kyso::trust::profiles::{self, ProfileError, Store};
use kyso::trust::{self, PathOptions, Purpose};

/// Where the trust store is: `--trust-store DIR`, else `trust/` under the data directory.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The trust store folder (default: DATA_DIR/trust).
    #[arg(long = "trust-store", value_name = "DIR")]
    pub trust_store: Option<PathBuf>,
    /// The data directory whose trust/ folder is the trust store.
    #[arg(long = "data-dir", value_name = "DIR", default_value = "kyso-data")]
    pub data_dir: PathBuf,
}

impl StoreArgs {
    pub fn store(&self) -> Store {
        Store::at(self.trust_store.as_deref(), &self.data_dir)
    }
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Add certificates (files or folders) to a profile; only pinned ones are accepted.
    Add(AddArgs),
    /// Download a built-in profile's certificates from their official locations.
    Fetch(FetchArgs),
    /// Show what each profile trusts.
    List(ListArgs),
    /// Say whether a certificate chains to a profile, and why not.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// `bcy`, `neac`, or a name of the operator's own.
    #[arg(long, value_name = "NAME")]
    profile: String,
    /// For a profile of the operator's own: the SHA-256 of a certificate to accept.
    /// Repeatable. Built-in profiles take only kyso's pins.
    #[arg(long = "pin", value_name = "SHA256")]
    pins: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Certificate files (PEM or DER) or folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[arg(long, value_name = "NAME")]
    profile: String,
    /// Fetch from these locations instead of the official ones (a mirror); what they serve
    /// is held to the same pins. Repeatable.
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,
    /// Timeout of each download, in seconds.
    #[arg(long = "fetch-timeout", value_name = "SECONDS", default_value_t = 10)]
    fetch_timeout: u64,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this profile.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    format: ListFormat,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(long, value_name = "NAME")]
    profile: String,
    /// Check at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339", value_parser = super::parse_rfc3339)]
    at: Option<OffsetDateTime>,
    #[command(flatten)]
    store: StoreArgs,
    /// The certificate (PEM or DER; further certificates in the file help build the path).
    cert: PathBuf,
}

/// Runs `kyso trust …`.
pub fn run(command: TrustCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let now = OffsetDateTime::now_utc();
    match command {
        TrustCommand::Add(a) => {
            let mut certs = Vec::new();
            for p in &a.paths {
                match trust::load_certificates(p) {
                    Ok(cs) => certs.extend(cs.into_iter().map(|c| (p.display().to_string(), c))),
                    Err(e) => {
                        super::report(err, &e);
                        return exit::USAGE;
                    }
                }
            }
            added(
                a.store.store().add(&a.profile, &certs, &a.pins, now),
                out,
                err,
            )
        }
        TrustCommand::Fetch(a) => fetch(a, now, out, err),
        TrustCommand::List(a) => list(a, out, err),
        TrustCommand::Check(a) => check(a, now, out, err),
    }
}

fn added(
    result: Result<Vec<profiles::Entry>, ProfileError>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match result {
        Ok(entries) => {
            for e in entries {
                let _ = writeln!(out, "added to {}: {}  {}", e.profile, e.sha256, e.subject);
            }
            exit::VALID
        }
        Err(e) => {
            super::report(err, &e);
            exit::USAGE
        }
    }
}

fn fetch(a: FetchArgs, now: OffsetDateTime, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let urls: Vec<String> = if a.urls.is_empty() {
        let Some(b) = profiles::builtin(&a.profile) else {
            let _ = writeln!(
                err,
                "kyso: {} is not a built-in profile: name the locations with --url",
                a.profile
            );
            return exit::USAGE;
        };
        let missing: Vec<&str> = b
            .pins
            .iter()
            .filter(|p| p.url.is_none())
            .map(|p| p.subject)
            .collect();
        if !missing.is_empty() {
            let _ = writeln!(
                out,
                "no official download location is known for {} certificate(s); add them with kyso trust add: {}",
                missing.len(),
                missing.join("; ")
            );
        }
        b.pins
            .iter()
            .filter_map(|p| p.url.map(str::to_owned))
            .collect()
    } else {
        a.urls.clone()
    };
    // The fetcher every online lookup uses: timeouts, a size limit, http(s) only.
    let fetcher = HttpFetcher::new(std::time::Duration::from_secs(a.fetch_timeout.max(1)));
    let mut certs = Vec::new();
    let mut failed = false;
    for url in &urls {
        let parsed = match fetcher.get(url, MAX_SMALL_BYTES) {
            Ok(bytes) => trust::certificates_from_bytes(&bytes, Path::new(url)),
            Err(e) => {
                super::report(err, &e);
                failed = true;
                continue;
            }
        };
        match parsed {
            Ok(cs) => certs.extend(cs.into_iter().map(|c| (url.clone(), c))),
            Err(e) => {
                super::report(err, &e);
                failed = true;
            }
        }
    }
    if certs.is_empty() {
        let _ = writeln!(err, "kyso: nothing was fetched for profile {}", a.profile);
        return exit::UNREADABLE;
    }
    let code = added(a.store.store().add(&a.profile, &certs, &[], now), out, err);
    if code == exit::VALID && failed {
        exit::UNREADABLE
    } else {
        code
    }
}

fn list(a: ListArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let store = a.store.store();
    let names = match &a.profile {
        Some(p) => vec![p.clone()],
        None => match store.profiles() {
            Ok(n) => n,
            Err(e) => {
                super::report(err, &e);
                return exit::UNREADABLE;
            }
        },
    };
    let mut all = Vec::new();
    for name in &names {
        match store.entries(name) {
            Ok(entries) => all.extend(entries.into_iter().map(|(e, _)| e)),
            Err(e) => {
                super::report(err, &e);
                return exit::UNREADABLE;
            }
        }
    }
    match a.format {
        ListFormat::Json => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&all).unwrap_or_default()
            );
        }
        ListFormat::Text => {
            if all.is_empty() {
                let _ = writeln!(out, "no trusted certificates in {}", store.dir().display());
            }
            let day = time::macros::format_description!("[year]-[month]-[day]");
            for e in &all {
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{} – {}\t{}\n\t{}",
                    e.profile,
                    match e.kind {
                        profiles::PinKind::Root => "root",
                        profiles::PinKind::Intermediate => "intermediate",
                    },
                    e.sha256,
                    e.not_before.format(day).unwrap_or_default(),
                    e.not_after.format(day).unwrap_or_default(),
                    e.subject,
                    e.source
                );
            }
        }
    }
    exit::VALID
}

fn check(a: CheckArgs, now: OffsetDateTime, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let store = match a.store.store().load(&a.profile) {
        Ok(s) => s,
        Err(e) => {
            super::report(err, &e);
            return exit::USAGE;
        }
    };
    let certs = match trust::load_certificates(&a.cert) {
        Ok(c) => c,
        Err(e) => {
            super::report(err, &e);
            return exit::UNREADABLE;
        }
    };
    let Some((leaf, extra)) = certs.split_first() else {
        let _ = writeln!(err, "kyso: {}: no certificate", a.cert.display());
        return exit::UNREADABLE;
    };
    let at = a.at.unwrap_or(now);
    let options = PathOptions {
        at,
        purpose: Purpose::Any,
    };
    let sha = profiles::fingerprint(leaf);
    match trust::build_path(leaf, extra, &store, options) {
        Ok(path) => {
            let _ = writeln!(
                out,
                "OK: {} chains to profile {} at {at}",
                leaf.names.subject, a.profile
            );
            for c in &path.certificates {
                let _ = writeln!(out, "  {}  {}", profiles::fingerprint(c), c.names.subject);
            }
            exit::VALID
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "NOT TRUSTED: {} (SHA-256 {sha}) does not chain to profile {}: {e}",
                leaf.names.subject, a.profile
            );
            if let Some(anchor) = store
                .anchors()
                .iter()
                .find(|r| r.subject_raw == leaf.subject_raw && r.sha256 != leaf.sha256)
            {
                let _ = writeln!(
                    out,
                    "  it has the exact subject of the pinned root {} but another fingerprint: a look-alike",
                    profiles::fingerprint(anchor)
                );
            }
            exit::INVALID
        }
    }
}
