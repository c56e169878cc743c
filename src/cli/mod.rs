//! The command line: `kyso verify FILE...` for clerks and operators, `kyso trust …` for
//! the trust profiles ([`trust`]); `serve`, `audit` and `client` are in
//! [`crate::service::commands`].
//!
//! A thin layer over [`crate::verify()`]: it turns arguments into a [`Context`], reads files,
//! prints reports, and maps verdicts to exit statuses. It reads the clock once, to give the
//! core "now" for signatures that name no time.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;

use crate::online::{HttpFetcher, Online};
use crate::report::{render_text, Lang, Verdict};
use crate::trust::TrustStore;
use crate::verify::{verify, Context, RevocationMode};

pub mod trust;

/// Exit statuses of `kyso verify` (README, "Command line").
pub mod exit {
    pub const VALID: u8 = 0;
    pub const INVALID: u8 = 1;
    pub const INDETERMINATE: u8 = 2;
    pub const UNSIGNED: u8 = 3;
    pub const UNREADABLE: u8 = 4;
    /// Every signature is VALID, but the document is not a proper document of the expected
    /// profile under the policy (`decree-30`).
    pub const NOT_CONFORMING: u8 = 5;
    /// BSD sysexits EX_USAGE.
    pub const USAGE: u8 = 64;
}

#[derive(Debug, Parser)]
#[command(
    name = "kyso",
    version,
    about = "Verify the digital signatures of PDF documents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify every signature of each FILE and print a report.
    Verify(VerifyArgs),
    /// Write the bytes signature N covers (the document as its signer saw it).
    Extract(ExtractArgs),
    /// Serve verification and the audit log over gRPC (README, "Service").
    Serve(crate::service::commands::ServeArgs),
    /// Check or query the audit log in a data directory.
    #[command(subcommand)]
    Audit(crate::service::commands::AuditCommand),
    /// Call a running kyso service.
    #[command(subcommand)]
    Client(crate::service::commands::ClientCommand),
    /// Manage the trust profiles (bcy, neac, …): add, fetch, list, check.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
}

#[derive(Debug, clap::Args)]
struct ExtractArgs {
    /// Which signature, 1-based, in the order `kyso verify` lists them.
    #[arg(long = "signature", value_name = "N")]
    signature: usize,
    /// Where to write the signed version.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    /// The signed PDF.
    file: PathBuf,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// PDF files to verify.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Trust anchor certificates: a PEM or DER file, or a folder of them. Repeatable.
    #[arg(long = "trust", value_name = "PATH")]
    trust: Vec<PathBuf>,
    /// Intermediate CA certificates: a PEM or DER file, or a folder of them. Repeatable.
    #[arg(long = "intermediates", value_name = "PATH")]
    intermediates: Vec<PathBuf>,
    /// Trust a profile of the trust store (`bcy`, `neac`, or the operator's own; see
    /// `kyso trust`). Repeatable; adds to --trust and --intermediates.
    #[arg(long = "trust-profile", value_name = "NAME")]
    trust_profiles: Vec<String>,
    #[command(flatten)]
    store: trust::StoreArgs,
    /// CRLs to use beside those in the document: a PEM or DER file, or a folder. Repeatable.
    #[arg(long = "crl", value_name = "PATH")]
    crl: Vec<PathBuf>,
    /// Revocation sources and what to do when none decides a certificate: `offline` uses only
    /// the document's data and --crl; `soft-fail` also fetches (OCSP, CRL distribution points,
    /// caIssuers) and reports what nothing answered for; `hard-fail` makes a signature
    /// INDETERMINATE when a source exists but gives no usable answer; `require` demands data
    /// for every certificate.
    #[arg(long = "revocation", value_enum, default_value_t = RevocationArg::SoftFail)]
    revocation: RevocationArg,
    /// Timeout of each online fetch, in seconds.
    #[arg(long = "fetch-timeout", value_name = "SECONDS", default_value_t = 5)]
    fetch_timeout: u64,
    /// Keep fetched CRLs and caIssuers certificates in this folder across runs.
    #[arg(long = "cache-dir", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Validate at this time (RFC 3339) instead of each signature's claimed signing time.
    #[arg(long = "at", value_name = "RFC3339", value_parser = parse_rfc3339)]
    at: Option<OffsetDateTime>,
    /// Output format: text for people, json for programs (one object per file per line).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Language of the text output.
    #[arg(long, value_enum, default_value_t = LangArg::Vi)]
    lang: LangArg,
    /// The document rules judged beside the signatures: `decree-30` (Vietnamese official
    /// documents, Decree 30/2020/NĐ-CP) or `none`.
    #[arg(long, value_name = "POLICY", default_value = "decree-30")]
    policy: crate::policy::PolicyChoice,
    /// The profile the document must be: issued (a main document), attachment, copy, or any.
    #[arg(long, value_name = "PROFILE", default_value = "issued")]
    expect: crate::policy::Expect,
    /// Roles file (TOML): the operator's known organisation and personal certificates and
    /// certificate-policy OIDs, tried before the default role rules.
    #[arg(long, value_name = "FILE")]
    roles: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RevocationArg {
    Offline,
    SoftFail,
    HardFail,
    Require,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LangArg {
    Vi,
    En,
}

pub(crate) fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time (e.g. 2023-12-29T10:50:25+07:00): {e}"))
}

/// Runs the command line with `args` (program name first) and returns the exit status.
pub fn run(
    args: impl IntoIterator<Item = OsString>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => exit::USAGE,
            };
            let text = e.render();
            let _ = if code == 0 {
                write!(out, "{text}")
            } else {
                write!(err, "{text}")
            };
            return code;
        }
    };
    match cli.command {
        Command::Verify(args) => run_verify(args, out, err),
        Command::Extract(args) => run_extract(args, out, err),
        Command::Serve(args) => crate::service::commands::serve(args, out, err),
        Command::Audit(cmd) => crate::service::commands::audit(cmd, out, err),
        Command::Client(cmd) => crate::service::commands::client(cmd, out, err),
        Command::Trust(cmd) => trust::run(cmd, out, err),
    }
}

fn run_extract(args: ExtractArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let name = args.file.display().to_string();
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(err, "kyso: {name}: cannot read the file: {e}");
            return exit::UNREADABLE;
        }
    };
    let signed = match crate::verify::signed_version(&bytes, args.signature) {
        Ok(s) => s,
        Err(e @ crate::ExtractError::Pdf(_)) => {
            let _ = writeln!(err, "kyso: {name}: {e}");
            return exit::UNREADABLE;
        }
        Err(e @ crate::ExtractError::NoSuchSignature { .. }) => {
            let _ = writeln!(err, "kyso: {name}: {e}");
            return exit::USAGE;
        }
        Err(e) => {
            let _ = writeln!(err, "kyso: {name}: {e}");
            return exit::INVALID;
        }
    };
    if let Err(e) = std::fs::write(&args.output, signed) {
        let _ = writeln!(err, "kyso: cannot write {}: {e}", args.output.display());
        return exit::UNREADABLE;
    }
    let _ = writeln!(
        out,
        "{}  {} ({} bytes, signature {} of {name})",
        hex::encode(openssl::sha::sha256(signed)),
        args.output.display(),
        signed.len(),
        args.signature
    );
    exit::VALID
}

fn run_verify(args: VerifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut trust = match TrustStore::from_paths(&args.trust, &args.intermediates) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "kyso: trust configuration: {e}");
            return exit::USAGE;
        }
    };
    for name in &args.trust_profiles {
        match args.store.store().load(name) {
            Ok(t) => trust.extend(t),
            Err(e) => {
                let _ = writeln!(err, "kyso: trust profile {name}: {e}");
                return exit::USAGE;
            }
        }
    }
    let mut ctx = Context::new(trust, OffsetDateTime::now_utc());
    ctx.at = args.at;
    ctx.crls = match crate::revocation::RevocationData::from_paths(&args.crl) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "kyso: revocation data: {e}");
            return exit::USAGE;
        }
    };
    ctx.revocation = match args.revocation {
        RevocationArg::Offline => RevocationMode::Offline,
        RevocationArg::SoftFail => RevocationMode::SoftFail,
        RevocationArg::HardFail => RevocationMode::HardFail,
        RevocationArg::Require => RevocationMode::Require,
    };
    if ctx.revocation != RevocationMode::Offline {
        let fetcher = HttpFetcher::new(std::time::Duration::from_secs(args.fetch_timeout.max(1)));
        ctx.online = Some(Arc::new(Online::new(
            Arc::new(fetcher),
            args.cache_dir.clone(),
        )));
    }
    ctx.policy.choice = args.policy;
    ctx.policy.expect = args.expect;
    if let Some(path) = &args.roles {
        ctx.policy.roles = match crate::policy::RoleRules::with_operator(path) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "kyso: {e}");
                return exit::USAGE;
            }
        };
    }
    let lang = match args.lang {
        LangArg::Vi => Lang::Vi,
        LangArg::En => Lang::En,
    };
    // With several files the status is the most severe one: unreadable, then INVALID,
    // INDETERMINATE, not conforming, UNSIGNED, VALID.
    let severity = |code: u8| match code {
        exit::UNREADABLE => 5,
        exit::INVALID => 4,
        exit::INDETERMINATE => 3,
        exit::NOT_CONFORMING => 2,
        exit::UNSIGNED => 1,
        _ => 0,
    };
    let mut status = exit::VALID;
    for (i, path) in args.files.iter().enumerate() {
        let name = path.display().to_string();
        let code = match std::fs::read(path) {
            Err(e) => {
                let _ = writeln!(err, "kyso: {name}: cannot read the file: {e}");
                exit::UNREADABLE
            }
            Ok(bytes) => match verify(&bytes, &ctx) {
                Err(e) => {
                    let _ = writeln!(err, "kyso: {name}: {e}");
                    exit::UNREADABLE
                }
                Ok(report) => {
                    match args.format {
                        Format::Json => {
                            let _ = writeln!(out, "{}", report.to_json(&name));
                        }
                        Format::Text => {
                            if i > 0 {
                                let _ = writeln!(out);
                            }
                            let _ = write!(out, "{}", render_text(&report, &name, lang));
                        }
                    }
                    match report.verdict {
                        Verdict::Valid if report.policy.as_ref().is_some_and(|p| !p.conforms) => {
                            exit::NOT_CONFORMING
                        }
                        Verdict::Valid => exit::VALID,
                        Verdict::Invalid => exit::INVALID,
                        Verdict::Indeterminate => exit::INDETERMINATE,
                        Verdict::Unsigned => exit::UNSIGNED,
                    }
                }
            },
        };
        if severity(code) > severity(status) {
            status = code;
        }
    }
    status
}
