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
    if dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("shapearith_")) {
        all_shapes_fold(&g, &shapes)?;
    }
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

/// Once the input shapes are fixed, no shape arithmetic is left for run time: every value
/// has a shape and no Shape node remains.
fn all_shapes_fold(g: &walkout::graph::Graph, shapes: &[Vec<usize>]) -> Result<(), String> {
    let s = walkout::graph::optimize::specialize(g, shapes).map_err(|e| format!("specialise: {e}"))?;
    match s.nodes.iter().find(|n| matches!(n.op, walkout::graph::Op::Shape) || n.outputs.iter().any(|&o| s.values[o].shape.is_none())) {
        Some(n) => Err(format!("node '{}' ({}) is left to run time", n.name, n.op.name())),
        None => Ok(()),
    }
}

/// Runs one exported model (scripts/export/cases) on each of its input sets, one plan per
/// set of shapes, as a user with dynamic axes would.
fn run_export(dir: &Path, exec: &dyn Executor) -> Result<Vec<f64>, String> {
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let get = |k: &str| meta[k].as_u64().unwrap() as usize;
    let (n_in, n_out, sets) = (get("inputs"), get("outputs"), get("sets"));
    let (atol, rtol) = (meta["atol"].as_f64().unwrap(), meta["rtol"].as_f64().unwrap());
    let g = onnx::load(&dir.join("model.onnx")).map_err(|e| format!("import: {e}"))?;
    let mut worst = Vec::new();
    for s in 0..sets {
        let inputs: Vec<Tensor> = (0..n_in).map(|i| walkout::npy::read(&dir.join(format!("in{s}_{i}.npy"))).unwrap()).collect();
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
        all_shapes_fold(&g, &shapes).map_err(|e| format!("set {s} {shapes:?}: {e}"))?;
        let mut plan = exec.compile(&g, &shapes).map_err(|e| format!("set {s} {shapes:?}: compile: {e}"))?;
        let outs = plan.run(&inputs).map_err(|e| format!("set {s} {shapes:?}: run: {e}"))?;
        if outs.len() != n_out {
            return Err(format!("set {s}: {} outputs, expected {n_out}", outs.len()));
        }
        let mut w = 0.0f64;
        for (i, o) in outs.iter().enumerate() {
            let want = walkout::npy::read(&dir.join(format!("out{s}_{i}.npy"))).unwrap();
            w = w.max(compare(o, &want, atol, rtol).map_err(|e| format!("set {s} {shapes:?}: output {i}: {e}"))?);
        }
        worst.push(w);
    }
    Ok(worst)
}

/// Models from real exporters (tf2onnx from Keras, torch.onnx.export of torchvision models),
/// with dynamic batch and spatial axes, each at several input sizes, against onnxruntime.
fn every_export_matches_onnxruntime(exec: &dyn Executor) {
    let dir = common::fetched("data/onnx-exports");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("meta.json").is_file()).collect();
    cases.sort();
    assert!(cases.len() >= 4, "expected every export, found {}", cases.len());
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match run_export(dir, exec) {
            Ok(d) => println!("{name:<36} ok   max abs diff per input set {:?}", d.iter().map(|x| format!("{x:.2e}")).collect::<Vec<_>>()),
            Err(e) => {
                println!("{name:<36} FAIL {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} exports failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

test_executors!(every_export_matches_onnxruntime_on, super::every_export_matches_onnxruntime);

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
fn an_axis_computed_from_data_is_named_with_what_computes_it() {
    let p = common::fetched("data/onnx-conformance/_bad/axes_from_data.onnx");
    let msg = onnx::load(&p).unwrap_err().to_string();
    assert!(msg.contains("'unsq'") && msg.contains("'ti'") && msg.contains("'axes_from_t' (Cast)"), "{msg}");
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
