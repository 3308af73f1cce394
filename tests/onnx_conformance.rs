#![allow(clippy::unwrap_used)]
//! ONNX conformance: every case built by scripts/onnx-conformance/gen.py (one small model
//! per op and attribute variant, plus MobileNetV2-style and ResNet-style nets) runs on
//! each executor (`test_executors!`) and is compared with onnxruntime's outputs.

mod common;

use std::path::{Path, PathBuf};
use walkout::graph::{onnx, DType, GraphError, Tensor};
use walkout::runtime::Executor;

fn cases() -> Vec<PathBuf> {
    let dir = common::fetched("data/onnx-conformance");
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("meta.json").is_file()).collect();
    v.sort();
    v
}

/// Compares one output; `Err` describes the mismatch.
fn compare(got: &Tensor, want: &Tensor, atol: f64, rtol: f64) -> Result<f64, String> {
    if got.shape != want.shape {
        return Err(format!("shape {:?}, expected {:?}", got.shape, want.shape));
    }
    let exact = !want.dtype().is_float();
    if exact && got.dtype() != want.dtype() && !(want.dtype() == DType::Bool || got.dtype() == DType::Bool) {
        return Err(format!("dtype {}, expected {}", got.dtype(), want.dtype()));
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let mut worst = 0.0f64;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let d = (a - b).abs();
        worst = worst.max(d);
        if (exact && d != 0.0) || (!exact && d > atol + rtol * b.abs()) || a.is_nan() != b.is_nan() {
            return Err(format!("element {i}: {a} vs {b}"));
        }
    }
    Ok(worst)
}

fn run_case(dir: &Path, exec: &dyn Executor) -> Result<f64, String> {
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let n_in = meta["inputs"].as_u64().unwrap() as usize;
    let n_out = meta["outputs"].as_u64().unwrap() as usize;
    let (atol, rtol) = (meta["atol"].as_f64().unwrap(), meta["rtol"].as_f64().unwrap());
    let g = onnx::load(&dir.join("model.onnx")).map_err(|e| format!("import: {e}"))?;
    let inputs: Vec<Tensor> = (0..n_in).map(|i| walkout::npy::read(&dir.join(format!("in{i}.npy"))).unwrap()).collect();
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
    let mut plan = exec.compile(&g, &shapes).map_err(|e| format!("compile: {e}"))?;
    let outs = plan.run(&inputs).map_err(|e| format!("run: {e}"))?;
    if outs.len() != n_out {
        return Err(format!("{} outputs, expected {n_out}", outs.len()));
    }
    let mut worst = 0.0f64;
    for (i, o) in outs.iter().enumerate() {
        let want = walkout::npy::read(&dir.join(format!("out{i}.npy"))).unwrap();
        worst = worst.max(compare(o, &want, atol, rtol).map_err(|e| format!("output {i}: {e}"))?);
    }
    Ok(worst)
}

fn every_case_matches_onnxruntime(exec: &dyn Executor) {
    let cases = cases();
    assert!(cases.len() >= 120, "expected the whole suite, found {} cases", cases.len());
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match run_case(dir, exec) {
            Ok(d) => println!("{name:<36} ok   max abs diff {d:.2e}"),
            Err(e) => {
                println!("{name:<36} FAIL {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

test_executors!(every_case_matches_onnxruntime_on, super::every_case_matches_onnxruntime);

#[test]
fn unsupported_ops_are_listed_together_with_node_names() {
    let p = common::fetched("data/onnx-conformance/_bad/unsupported.onnx");
    match onnx::load(&p) {
        Err(GraphError::UnsupportedOps(list)) => {
            assert_eq!(list.len(), 2, "{list:?}");
            let msg = list.join("; ");
            assert!(msg.contains("FancyOp") && msg.contains("MysteryOp (node 'mystery_node')"), "{msg}");
        }
        other => panic!("expected UnsupportedOps, got {other:?}"),
    }
}

#[test]
fn opset_outside_the_range_is_rejected() {
    let p = common::fetched("data/onnx-conformance/_bad/opset30.onnx");
    let msg = onnx::load(&p).unwrap_err().to_string();
    assert!(msg.contains("opset 30") && msg.contains("1..=21"), "{msg}");
}

#[test]
fn invalid_protobuf_is_rejected() {
    let d = std::env::temp_dir().join(format!("walkout-onnx-bad-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("garbage.onnx");
    std::fs::write(&p, b"\x08\x96\x01 this is not an ONNX model \xff\xff\xff").unwrap();
    let msg = onnx::load(&p).unwrap_err().to_string();
    assert!(msg.contains("garbage.onnx") && msg.contains("invalid protobuf"), "{msg}");
}

#[test]
fn missing_external_data_names_the_file() {
    let src = common::fetched("data/onnx-conformance/external_data");
    let d = std::env::temp_dir().join(format!("walkout-onnx-ext-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(src.join("model.onnx"), d.join("model.onnx")).unwrap();
    let _ = std::fs::remove_file(d.join("weights.bin"));
    let msg = onnx::load(&d.join("model.onnx")).unwrap_err().to_string();
    assert!(msg.contains("weights.bin") && msg.contains("missing external data"), "{msg}");
}
