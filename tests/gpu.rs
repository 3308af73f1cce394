#![allow(clippy::unwrap_used)]
//! The wgpu executor on whatever adapter exists (Mesa's lavapipe in CI): MoveNet against the
//! TF.js references, the whole ONNX conformance suite against onnxruntime, and batches of
//! 1, 3 and 8 against batch 1.

mod common;

use walkout::graph::{onnx, tfjs, Tensor};
use walkout::runtime::{concat_batch, cpu::CpuExecutor, gpu::GpuExecutor, slice_batch, Executor};

fn gpu() -> GpuExecutor {
    GpuExecutor::new().expect("a wgpu adapter (scripts/setup installs Mesa's lavapipe)")
}

#[test]
fn movenet_on_gpu_matches_tfjs_and_cpu() {
    let exec = gpu();
    println!("adapter: {}", exec.adapter());
    let graph = tfjs::load(&common::movenet_json()).unwrap();
    let dir = common::fetched("data/reference");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".input.npy"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 7);
    let cpu = CpuExecutor::new();
    for p in cases {
        let name = p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".input.npy", "");
        let input = walkout::npy::read(&p).unwrap();
        let want = walkout::npy::read(&dir.join(format!("{name}.output.npy"))).unwrap();
        let mut plan = exec
            .compile(&graph, std::slice::from_ref(&input.shape))
            .unwrap();
        let got = plan.run(std::slice::from_ref(&input)).unwrap();
        let mut cplan = cpu
            .compile(&graph, std::slice::from_ref(&input.shape))
            .unwrap();
        let c = cplan.run(&[input]).unwrap();
        let d = got[0].max_abs_diff(&want).unwrap();
        let dc = got[0].max_abs_diff(&c[0]).unwrap();
        println!("{name}: GPU vs TF.js {d:.2e}, GPU vs CPU {dc:.2e}");
        assert!(d <= 1e-3, "{name}: {d}");
    }
}

#[test]
fn onnx_conformance_on_gpu() {
    let exec = gpu();
    let dir = common::fetched("data/onnx-conformance");
    let mut failures = Vec::new();
    let mut n = 0;
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    cases.sort();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("meta.json")).unwrap())
                .unwrap();
        let (atol, rtol) = (
            meta["atol"].as_f64().unwrap(),
            meta["rtol"].as_f64().unwrap(),
        );
        let g = onnx::load(&case.join("model.onnx")).unwrap();
        let inputs: Vec<Tensor> = (0..meta["inputs"].as_u64().unwrap())
            .map(|i| walkout::npy::read(&case.join(format!("in{i}.npy"))).unwrap())
            .collect();
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
        let outs = match exec.compile(&g, &shapes).and_then(|mut p| p.run(&inputs)) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for (i, o) in outs.iter().enumerate() {
            let want = walkout::npy::read(&case.join(format!("out{i}.npy"))).unwrap();
            let exact = !want.dtype().is_float();
            let ok = o.shape == want.shape
                && o.to_f64_vec().iter().zip(want.to_f64_vec()).all(|(a, b)| {
                    if exact {
                        *a == b
                    } else {
                        (a - b).abs() <= atol + rtol * b.abs()
                    }
                });
            if !ok {
                failures.push(format!(
                    "{name}: output {i} differs (max abs {:?})",
                    o.max_abs_diff(&want)
                ));
            }
        }
        n += 1;
    }
    assert!(n >= 120, "{n} cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn gpu_batches_match_batch_one() {
    let exec = gpu();
    let case = common::fetched("data/onnx-conformance/net_mobilenetv2");
    let g = onnx::load(&case.join("model.onnx")).unwrap();
    // eight different frames
    let frames: Vec<Tensor> = (0..8)
        .map(|k| {
            Tensor::f32(
                vec![1, 3, 64, 64],
                (0..3 * 64 * 64)
                    .map(|i| (((i * 31 + k * 977) % 255) as f32 / 127.0) - 1.0)
                    .collect(),
            )
        })
        .collect();
    let mut one = exec.compile(&g, &[vec![1, 3, 64, 64]]).unwrap();
    let single: Vec<Tensor> = frames
        .iter()
        .map(|f| one.run(std::slice::from_ref(f)).unwrap().remove(0))
        .collect();
    for b in [1usize, 3, 8] {
        let mut plan = exec.compile(&g, &[vec![b, 3, 64, 64]]).unwrap();
        let out = plan.run(&[concat_batch(&frames[..b])]).unwrap().remove(0);
        for (k, want) in single.iter().enumerate().take(b) {
            let d = slice_batch(&out, k).max_abs_diff(want).unwrap();
            assert!(d <= 1e-5, "batch {b} frame {k}: {d}");
        }
    }
}
