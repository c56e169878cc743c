//! Compiles `proto/kyso/v1/*.proto` with protox (a pure-Rust protobuf compiler: no `protoc`
//! needed) and generates the tonic service code from the descriptors; the descriptor set is
//! also kept for gRPC server reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/kyso/v1/report.proto",
        "proto/kyso/v1/verification.proto",
        "proto/kyso/v1/audit.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("kyso_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
