//! The `kyso` binary: see the README for its commands.

use std::process::ExitCode;

mod cli;

// lopdf copies each stream's content when it parses, so a 20 MB scan is a 20 MB allocation
// per load, and two per verification of a document signed in two revisions. glibc's malloc
// raises its mmap threshold after the first such buffer is freed; from then on they come from
// the heap, are trimmed back to the system on free and faulted in again page by page. On the
// 20 MB benchmark document that took a verification from 16 ms to 29 ms once smaller
// documents had been verified first, as a server does. mimalloc keeps large buffers mapped.
// The library does not choose an allocator: that is for whoever embeds it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let stdout = std::io::stdout();
    // Not locked for the whole run: `kyso serve` logs to stderr from its worker threads,
    // which would wait for the lock forever.
    let code = cli::run(
        std::env::args_os(),
        &mut stdout.lock(),
        &mut std::io::stderr(),
    );
    ExitCode::from(code)
}
