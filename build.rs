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
    // Documents as `bytes::Bytes`: decoded as a view of the received buffer, not a copy.
    let mut builder = tonic_prost_build::configure();
    for field in [
        ".kyso.v1.VerifyDocumentRequest.document",
        ".kyso.v1.VerifyDocumentChunk.data",
        ".kyso.v1.ExtractSignaturesRequest.document",
        ".kyso.v1.GetSignedRevisionRequest.document",
    ] {
        builder = builder.bytes(field);
    }
    builder
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
