//! The command line of the `kyso` binary: arguments, exit statuses, dispatch.
//!
//! A thin layer over the library: [`verify`] (`kyso verify`, `kyso extract`), [`serve`]
//! (`kyso serve`), [`audit`] (`kyso audit …` on a data directory), [`client`] (`kyso
//! client …`, a gRPC client, and the table/CSV/JSON printers of audit records) and
//! [`trust`] (`kyso trust …`). It reads the clock once, to give the core "now" for
//! signatures that name no time.

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};
use time::OffsetDateTime;

mod audit;
mod client;
mod serve;
mod trust;
mod verify;

/// Exit statuses (README, "Command line").
pub mod exit {
    /// Every signature VALID (and the document conforms), or the command succeeded.
    pub const VALID: u8 = 0;
    /// A signature is INVALID, or the audit log failed its check.
    pub const INVALID: u8 = 1;
    /// A signature is INDETERMINATE.
    pub const INDETERMINATE: u8 = 2;
    /// The document has no signature.
    pub const UNSIGNED: u8 = 3;
    /// The file cannot be read as a PDF (or cannot be read at all).
    pub const UNREADABLE: u8 = 4;
    /// Every signature is VALID, but the document is not a proper document of the expected
    /// profile under the policy (`decree-30`).
    pub const NOT_CONFORMING: u8 = 5;
    /// BSD sysexits EX_USAGE: the arguments or the configuration are wrong.
    pub const USAGE: u8 = 64;
    /// EX_UNAVAILABLE: the service cannot be reached, or could not answer.
    pub const UNAVAILABLE: u8 = 69;
    /// EX_OSERR: kyso could not start (its runtime), or a store it needs failed.
    pub const OS_ERROR: u8 = 71;
    /// EX_NOPERM: the service refused the caller's credentials or role.
    pub const NO_PERMISSION: u8 = 77;
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

// Parsed once per run: the size difference between commands does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Verify every signature of each FILE and print a report.
    Verify(verify::VerifyArgs),
    /// Write the bytes signature N covers (the document as its signer saw it).
    Extract(verify::ExtractArgs),
    /// Serve verification and the audit log over gRPC (README, "Service").
    Serve(serve::ServeArgs),
    /// Check or query the audit log in a data directory.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Call a running kyso service.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage the trust profiles (bcy, neac, …): add, fetch, list, check.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
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
        Command::Verify(args) => verify::run_verify(args, out, err),
        Command::Extract(args) => verify::run_extract(args, out, err),
        Command::Serve(args) => serve::serve(args, out, err),
        Command::Audit(cmd) => audit::audit(cmd, out, err),
        Command::Client(cmd) => client::client(cmd, out, err),
        Command::Trust(cmd) => trust::run(cmd, out, err),
    }
}

/// An RFC 3339 time, as the flags that take one read it.
fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
}

/// `error` and each of its causes, once each ([`kyso::error_chain`]).
use kyso::error_chain as chain;

/// Writes `kyso: <error and its causes>` to `err`.
fn report(err: &mut dyn Write, error: &(dyn std::error::Error + 'static)) {
    let _ = writeln!(err, "kyso: {}", chain(error));
}

/// A multi-threaded tokio runtime, or the reason there is none, written to `err`.
fn runtime(err: &mut dyn Write) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            let _ = writeln!(err, "kyso: cannot start the async runtime: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_cause_is_shown_once() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
    }
}
