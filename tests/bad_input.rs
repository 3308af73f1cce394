#![allow(clippy::unwrap_used)]
//! Bad input gets a clear error naming the file, node or op; never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use walkout::graph::{tfjs, GraphError, Tensor};
use walkout::runtime::{cpu::CpuExecutor, Executor, RuntimeError};
use walkout::vision::image_io::{self, ImageError};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("walkout-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Copies the MoveNet model into a temp dir, applying `edit` to the parsed model.json.
fn model_copy(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let src = common::movenet_json();
    let d = tmpdir(name);
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(d.join("model.json"), serde_json::to_string(&m).unwrap()).unwrap();
    std::fs::copy(src.parent().unwrap().join("movenet-multipose.bin"), d.join("movenet-multipose.bin")).unwrap();
    d.join("model.json")
}

#[test]
fn truncated_shard_names_file_and_weight() {
    let p = model_copy("truncated", |_| {});
    let bin = p.parent().unwrap().join("movenet-multipose.bin");
    let len = std::fs::metadata(&bin).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&bin).unwrap().set_len(len / 2).unwrap();
    let e = tfjs::load(&p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, GraphError::Weight { .. }), "{msg}");
    assert!(msg.contains("truncated") && msg.contains("movenet-multipose.bin") && msg.contains("weight '"), "{msg}");
}

#[test]
fn missing_shard_file_is_an_io_error() {
    let p = model_copy("noshard", |_| {});
    std::fs::remove_file(p.parent().unwrap().join("movenet-multipose.bin")).unwrap();
    let msg = tfjs::load(&p).unwrap_err().to_string();
    assert!(msg.contains("movenet-multipose.bin"), "{msg}");
}

#[test]
fn missing_weight_names_the_node() {
    let mut removed = String::new();
    let p = model_copy("missing", |m| {
        let w = m["weightsManifest"][0]["weights"].as_array_mut().unwrap();
        // drop the last weight (keeps the other offsets valid)
        removed = w.pop().unwrap()["name"].as_str().unwrap().to_string();
    });
    let msg = tfjs::load(&p).unwrap_err().to_string();
    assert!(msg.contains(&removed) && msg.contains("missing"), "{msg}");
}

#[test]
fn unknown_ops_are_all_listed_with_node_names() {
    let p = model_copy("unknown", |m| {
        let nodes = m["modelTopology"]["node"].as_array_mut().unwrap();
        let mut n = 0;
        for node in nodes.iter_mut() {
            if node["op"] == "Sigmoid" {
                node["op"] = serde_json::json!("FancySigmoid");
                n += 1;
            }
        }
        assert_eq!(n, 2);
    });
    let e = tfjs::load(&p).unwrap_err();
    let msg = e.to_string();
    match &e {
        GraphError::UnsupportedOps(list) => assert_eq!(list.len(), 2, "{msg}"),
        other => panic!("expected UnsupportedOps, got {other}"),
    }
    assert!(msg.contains("FancySigmoid") && msg.contains("node 'StatefulPartitionedCall/Sigmoid"), "{msg}");
}

#[test]
fn malformed_json_is_reported() {
    let d = tmpdir("malformed");
    std::fs::write(d.join("model.json"), "{ not json").unwrap();
    let msg = tfjs::load(&d.join("model.json")).unwrap_err().to_string();
    assert!(msg.contains("model.json") && msg.contains("malformed"), "{msg}");
}

#[test]
fn shape_mismatch_names_the_input() {
    let g = tfjs::load(&common::movenet_json()).unwrap();
    let exec = CpuExecutor::new();
    // 4 channels where the model declares 3
    let e = exec.compile(&g, &[vec![1, 256, 256, 4]]).expect_err("must fail");
    assert!(e.to_string().contains("input 'input'") && e.to_string().contains("[1,?,?,3]"), "{e}");
    // a plan run with a tensor of another shape or dtype
    let mut plan = exec.compile(&g, &[vec![1, 256, 256, 3]]).unwrap();
    let e = plan.run(&[Tensor::zeros(walkout::graph::DType::I32, vec![1, 128, 128, 3])]).expect_err("must fail");
    assert!(matches!(e, RuntimeError::Input { .. }) && e.to_string().contains("input 'input'"), "{e}");
    let e = plan.run(&[Tensor::zeros(walkout::graph::DType::F32, vec![1, 256, 256, 3])]).expect_err("must fail");
    assert!(e.to_string().contains("dtype f32"), "{e}");
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn png_chunk(v: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    let mut chunk = kind.to_vec();
    chunk.extend_from_slice(data);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(&chunk);
    v.extend_from_slice(&crc32(&chunk).to_be_bytes());
}

/// A PNG that declares the given size in a valid IHDR, with a few bytes of pixel data: what a
/// decompression bomb looks like before decoding.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut v, b"IHDR", &ihdr);
    png_chunk(&mut v, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    png_chunk(&mut v, b"IEND", &[]);
    v
}

#[test]
fn not_an_image() {
    let d = tmpdir("notimage");
    let p = d.join("notes.jpg");
    std::fs::write(&p, "this is plain text, not a JPEG").unwrap();
    let e = image_io::load(&p).unwrap_err();
    assert!(matches!(e, ImageError::Decode { .. }) && e.to_string().contains("notes.jpg"), "{e}");
}

/// Bytes on which zune-jpeg 0.5.15 (the `image` crate's JPEG decoder) panics in its IDCT,
/// found by the fuzz pass: the panic is contained and the image refused as undecodable.
#[test]
fn a_jpeg_that_panics_its_decoder_is_a_decode_error() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/image/zune-jpeg-idct-panic.jpg");
    let e = image_io::load(&p).unwrap_err();
    assert!(matches!(e, ImageError::Decode { .. }) && e.to_string().contains("zune-jpeg-idct-panic.jpg"), "{e}");
    // and again, so a contained panic leaves nothing behind
    let bytes = std::fs::read(&p).unwrap();
    assert!(image_io::decode_limited(&bytes, "again", 1024).is_err());
}

#[test]
fn huge_and_empty_images_are_rejected_before_decoding() {
    let d = tmpdir("sizes");
    let huge = d.join("huge.png");
    std::fs::write(&huge, png_header(100_000, 10)).unwrap();
    let e = image_io::load(&huge).unwrap_err();
    assert!(matches!(e, ImageError::Size { w: 100_000, .. }), "{e}");
    assert!(e.to_string().contains("huge.png"), "{e}");
    let empty = d.join("empty.png");
    std::fs::write(&empty, png_header(0, 10)).unwrap();
    let e = image_io::load(&empty).unwrap_err();
    assert!(e.to_string().contains("empty.png"), "{e}");
}

fn walkout(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_walkout")).args(args).current_dir(common::root()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn cli_exits_non_zero_with_a_message() {
    common::movenet_json();
    let d = tmpdir("cli");
    let txt = d.join("x.png");
    std::fs::write(&txt, "nope").unwrap();
    let (code, err) = walkout(&["pose", txt.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("x.png") && !err.contains("panicked"), "{err}");

    let huge = d.join("wide.png");
    std::fs::write(&huge, png_header(100_000, 4)).unwrap();
    let (code, err) = walkout(&["pose", huge.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("100000x4") && !err.contains("panicked"), "{err}");

    let bad = d.join("bad.npy");
    walkout::npy::write(&bad, &Tensor::zeros(walkout::graph::DType::I32, vec![1, 64, 64, 5])).unwrap();
    let (code, err) =
        walkout(&["models", "run", "movenet-multipose", "--input", bad.to_str().unwrap(), "--output", d.join("o.npy").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("input 'input'") && !err.contains("panicked"), "{err}");

    let p = model_copy("cli-unknown", |m| {
        for node in m["modelTopology"]["node"].as_array_mut().unwrap() {
            if node["op"] == "TopKV2" {
                node["op"] = serde_json::json!("TopKV9");
            }
        }
    });
    let (code, err) = walkout(&["models", "inspect", p.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("TopKV9") && err.contains("TopKV2'"), "{err}");
    let _ = Path::new("");
}

/// An ONNX initializer whose dims multiply past usize (found by the fuzz pass) is a typed
/// error, not an overflow panic; and the byte count check says no for any such shape.
#[test]
fn an_initializer_too_large_to_count_is_an_error() {
    let crash = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/onnx/regress-tensor-bytes-overflow");
    let bytes = std::fs::read(crash).unwrap();
    assert!(walkout::graph::onnx::from_bytes(&bytes, Path::new("."), "crash.onnx").is_err());
    assert!(Tensor::from_le_bytes(walkout::graph::DType::F32, vec![usize::MAX / 2, 3], &[0; 12]).is_none());
}
