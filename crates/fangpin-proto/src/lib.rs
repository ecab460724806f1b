//! The one crate that owns generated protobuf code. Every other crate reaches
//! tonic and prost through the re-exports here, so the whole workspace builds
//! against one version of each.

pub use prost;
pub use tonic;

/// fangpin.v1: messages, clients (`*_client`) and servers (`*_server`).
pub mod v1 {
    #![allow(clippy::all, clippy::unwrap_used)]
    tonic::include_proto!("fangpin.v1");
    include!(concat!(env!("OUT_DIR"), "/fangpin.v1.serde.rs"));
}

/// The encoded descriptor set of every fangpin.v1 file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("fangpin_descriptor");
