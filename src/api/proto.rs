//! Generated wire types. Only `src/api` converts between these and walkout's own types.

#![allow(clippy::all, missing_debug_implementations)]

/// `walkout.v1`
pub mod walkout {
    tonic::include_proto!("walkout.v1");
}

/// `inference`: the KServe v2 / Open Inference Protocol.
pub mod inference {
    tonic::include_proto!("inference");
}

/// Descriptors of both services, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("walkout_descriptor");
