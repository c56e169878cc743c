//! HTTP request parsing: raw bytes sent to a real `kyso serve` HTTP side (hyper's framing,
//! axum's routing, kyso's query, content-type, multipart and body handling, the handlers),
//! one connection per input. A panic anywhere aborts (so libFuzzer sees it); a connection
//! the server holds past 20 s after the input ended is reported as a hang.
#![no_main]
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

struct Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
    _data: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            std::process::abort();
        }));
        // The audit log on tmpfs where there is one: its fsyncs cost nothing there.
        let data = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("a data directory");
        let pki = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs-test/pki/");
        let config = kyso::service::config::Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            http_listen: "127.0.0.1:0".parse().expect("address"),
            data_dir: data.path().to_owned(),
            trust: vec![format!("{pki}root-ca.pem").into()],
            intermediates: vec![format!("{pki}party-ca.pem").into()],
            revocation: kyso::verify::RevocationMode::Offline,
            no_auth: true,
            max_document_bytes: 1 << 20,
            max_request_bytes_in_flight: 64 << 20,
            request_timeout_seconds: 10,
            ..Default::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let running = runtime
            .block_on(kyso::service::start(config))
            .expect("kyso serve starts");
        let addr = running.http_addr;
        // Served until the process ends.
        std::mem::forget(running);
        Server {
            addr,
            _runtime: runtime,
            _data: data,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = server();
    let mut c = TcpStream::connect(s.addr).expect("the server listens");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a timeout");
    let _ = c.write_all(data);
    let _ = c.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    if let Err(e) = c.read_to_end(&mut answer) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the server held the connection 20 s after the request ended"
        );
    }
});
