#![allow(clippy::unwrap_used)]
//! ONNX conformance: every case built by scripts/onnx-conformance/gen.py (one small model
//! per op and attribute variant, plus MobileNetV2-style and ResNet-style nets) runs on
//! each executor (`test_executors!`) and is compared with onnxruntime's outputs.

mod common;

use std::path::{Path, PathBuf};
use walkout::graph::{onnx, DType, GraphError, Tensor};
use walkout::runtime::Executor;

/// The cases in `rel` (a folder per case with meta.json), sorted.
fn cases_in(rel: &str) -> Vec<PathBuf> {
    let dir = common::fetched(rel);
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

/// Once the input shapes are fixed, no shape arithmetic is left for run time: every value
/// has a shape and no Shape node remains.
fn all_shapes_fold(g: &walkout::graph::Graph, shapes: &[Vec<usize>]) -> Result<(), String> {
    let s = walkout::graph::optimize::specialize(g, shapes).map_err(|e| format!("specialise: {e}"))?;
    match s.nodes.iter().find(|n| matches!(n.op, walkout::graph::Op::Shape) || n.outputs.iter().any(|&o| s.values[o].shape.is_none())) {
        Some(n) => Err(format!("node '{}' ({}) is left to run time", n.name, n.op.name())),
        None => Ok(()),
    }
}

/// Runs one case on each of its input sets, one plan per set of shapes, as a user with
/// dynamic axes would: gen.py's cases have one set (`in<i>.npy`, `out<i>.npy`), the exports
/// of scripts/export/cases several (`meta.sets`; `in<s>_<i>.npy`). Exports and the
/// `shapearith_` cases must also fold all their shape arithmetic. Returns the worst
/// difference per set.
fn run_case(dir: &Path, exec: &dyn Executor) -> Result<Vec<f64>, String> {
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let get = |k: &str| meta[k].as_u64().unwrap() as usize;
    let (n_in, n_out, sets) = (get("inputs"), get("outputs"), meta["sets"].as_u64());
    let (atol, rtol) = (meta["atol"].as_f64().unwrap(), meta["rtol"].as_f64().unwrap());
    let file = |kind: &str, s: u64, i: usize| match sets {
        Some(_) => dir.join(format!("{kind}{s}_{i}.npy")),
        None => dir.join(format!("{kind}{i}.npy")),
    };
    let must_fold = sets.is_some() || dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("shapearith_"));
    let g = onnx::load(&dir.join("model.onnx")).map_err(|e| format!("import: {e}"))?;
    let mut worst = Vec::new();
    for s in 0..sets.unwrap_or(1) {
        let inputs: Vec<Tensor> = (0..n_in).map(|i| walkout::npy::read(&file("in", s, i)).unwrap()).collect();
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
        let at = |e: String| format!("set {s} {shapes:?}: {e}");
        if must_fold {
            all_shapes_fold(&g, &shapes).map_err(at)?;
        }
        let mut plan = exec.compile(&g, &shapes).map_err(|e| at(format!("compile: {e}")))?;
        let outs = plan.run(&inputs).map_err(|e| at(format!("run: {e}")))?;
        if outs.len() != n_out {
            return Err(at(format!("{} outputs, expected {n_out}", outs.len())));
        }
        let mut w = 0.0f64;
        for (i, o) in outs.iter().enumerate() {
            let want = walkout::npy::read(&file("out", s, i)).unwrap();
            w = w.max(compare(o, &want, atol, rtol).map_err(|e| at(format!("output {i}: {e}")))?);
        }
        worst.push(w);
    }
    Ok(worst)
}

/// Runs every case in `rel` (at least `min` of them) and fails with all the failures.
fn every_case_in(rel: &str, min: usize, exec: &dyn Executor) {
    let cases = cases_in(rel);
    assert!(cases.len() >= min, "expected the whole suite in {rel}, found {} cases", cases.len());
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match run_case(dir, exec) {
            Ok(d) => println!("{name:<36} ok   max abs diff {:?}", d.iter().map(|x| format!("{x:.2e}")).collect::<Vec<_>>()),
            Err(e) => {
                println!("{name:<36} FAIL {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// gen.py's suite: one small model per op and attribute variant, and whole nets.
fn every_case_matches_onnxruntime(exec: &dyn Executor) {
    every_case_in("data/onnx-conformance", 120, exec);
}

test_executors!(every_case_matches_onnxruntime_on, super::every_case_matches_onnxruntime);

/// Models from real exporters (tf2onnx from Keras, torch.onnx.export of torchvision models),
/// with dynamic batch and spatial axes, each at several input sizes.
fn every_export_matches_onnxruntime(exec: &dyn Executor) {
    every_case_in("data/onnx-exports", 4, exec);
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
