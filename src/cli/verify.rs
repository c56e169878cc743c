//! `kyso verify FILE...` and `kyso extract`: reports and signed versions, for clerks and
//! operators.

use std::io::Write;
use std::path::PathBuf;

use time::OffsetDateTime;

use super::{exit, report};
use kyso::policy::{Expect, PolicyChoice};
use kyso::report::{render_text, Lang, Verdict};
use kyso::verify::{verify, Context, ExtractError, Inputs, RevocationMode, Settings};

#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
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
pub struct VerifyArgs {
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
    store: super::trust::StoreArgs,
    /// CRLs to use beside those in the document: a PEM or DER file, or a folder. Repeatable.
    #[arg(long = "crl", value_name = "PATH")]
    crl: Vec<PathBuf>,
    /// Revocation sources and what to do when none decides a certificate: `offline` uses only
    /// the document's data and --crl; `soft-fail` also fetches (OCSP, CRL distribution points,
    /// caIssuers) and reports what nothing answered for; `hard-fail` makes a signature
    /// INDETERMINATE when a source exists but gives no usable answer; `require` demands data
    /// for every certificate.
    #[arg(long = "revocation", value_name = "MODE", default_value = "soft-fail")]
    revocation: RevocationMode,
    /// Timeout of each online fetch, in seconds.
    #[arg(long = "fetch-timeout", value_name = "SECONDS", default_value_t = 5)]
    fetch_timeout: u64,
    /// Keep fetched CRLs and caIssuers certificates in this folder across runs.
    #[arg(long = "cache-dir", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Validate at this time (RFC 3339) instead of each signature's claimed signing time.
    #[arg(long = "at", value_name = "RFC3339", value_parser = super::parse_rfc3339)]
    at: Option<OffsetDateTime>,
    /// Output format: text for people, json for programs (one object per file per line).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Language of the text output: vi or en.
    #[arg(long, value_name = "LANG", default_value = "vi")]
    lang: Lang,
    /// The document rules judged beside the signatures: `decree-30` (Vietnamese official
    /// documents, Decree 30/2020/NĐ-CP) or `none`.
    #[arg(long, value_name = "POLICY", default_value = "decree-30")]
    policy: PolicyChoice,
    /// The profile the document must be: issued (a main document), attachment, copy, or any.
    #[arg(long, value_name = "PROFILE", default_value = "issued")]
    expect: Expect,
    /// Roles file (TOML): the operator's known organisation and personal certificates and
    /// certificate-policy OIDs, tried before the default role rules.
    #[arg(long, value_name = "FILE")]
    roles: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

impl VerifyArgs {
    fn settings(&self) -> Settings {
        Settings {
            trust: self.trust.clone(),
            intermediates: self.intermediates.clone(),
            trust_profiles: self.trust_profiles.clone(),
            trust_store: self.store.store(),
            crl: self.crl.clone(),
            revocation: self.revocation,
            fetch_timeout: std::time::Duration::from_secs(self.fetch_timeout),
            cache_dir: self.cache_dir.clone(),
            policy: self.policy,
            expect: self.expect,
            roles: self.roles.clone(),
        }
    }
}

pub fn run_extract(args: ExtractArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let name = args.file.display().to_string();
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(err, "kyso: {name}: cannot read the file: {e}");
            return exit::UNREADABLE;
        }
    };
    let signed = match kyso::signed_version(&bytes, args.signature) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "kyso: {name}: {}", super::chain(&e));
            return match e {
                ExtractError::Pdf(_) => exit::UNREADABLE,
                ExtractError::NoSuchSignature { .. } => exit::USAGE,
                ExtractError::ByteRange { .. } => exit::INVALID,
            };
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

pub fn run_verify(args: VerifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let ctx = match Context::from_settings(&args.settings()) {
        Ok(ctx) => ctx,
        Err(e) => {
            report(err, &e);
            return exit::USAGE;
        }
    };
    let inputs = Inputs {
        at: args.at,
        ..Inputs::at(OffsetDateTime::now_utc())
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
            Ok(bytes) => match verify(&bytes, &ctx, inputs) {
                Err(e) => {
                    let _ = writeln!(err, "kyso: {name}: {}", super::chain(&e));
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
                            let _ = write!(out, "{}", render_text(&report, &name, args.lang));
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
