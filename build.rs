//! Generates prost types for the ONNX protobuf schema (proto/onnx.proto). Needs protoc
//! (Debian `protobuf-compiler`, installed by scripts/setup).

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    if let Err(e) = prost_build::Config::new().compile_protos(&["proto/onnx.proto"], &["proto"]) {
        panic!("generating ONNX protobuf types failed ({e}); is protoc installed? run scripts/setup");
    }
}
