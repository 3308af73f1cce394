//! Generates prost types for the ONNX protobuf schema (proto/onnx.proto) and tonic services for
//! walkout.v1 and the KServe v2 inference protocol. Needs protoc (Debian `protobuf-compiler`,
//! installed by scripts/setup).

use std::path::PathBuf;

fn main() {
    for p in ["proto/onnx.proto", "proto/walkout/v1/vision.proto", "proto/kserve/grpc_predict_v2.proto"] {
        println!("cargo:rerun-if-changed={p}");
    }
    let hint = "is protoc installed? run scripts/setup";
    if let Err(e) = prost_build::Config::new().compile_protos(&["proto/onnx.proto"], &["proto"]) {
        panic!("generating ONNX protobuf types failed ({e}); {hint}");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(e) = tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("walkout_descriptor.bin"))
        .compile_protos(&["proto/walkout/v1/vision.proto", "proto/kserve/grpc_predict_v2.proto"], &["proto"])
    {
        panic!("generating gRPC services failed ({e}); {hint}");
    }
}
