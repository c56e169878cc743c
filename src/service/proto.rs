//! The code generated from `proto/kyso/v1/*.proto` (build.rs).
#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("kyso.v1");

/// The descriptor set of kyso's protos, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("kyso_descriptor");
