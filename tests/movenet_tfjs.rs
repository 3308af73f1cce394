#![allow(clippy::unwrap_used)]
//! MoveNet MultiPose on walkout's CPU executor against TF.js (pure-JS CPU backend) outputs
//! recorded by scripts/reference/tfjs-reference.mjs on real photos and video frames.

mod common;

use walkout::graph::tfjs;
use walkout::models::Repository;
use walkout::pipeline::PosePipeline;
use walkout::runtime::{cpu::CpuExecutor, Executor};

const TOL: f64 = 1e-3;

/// Every executor (`test_executors!`: the CPU and its forced vector paths, the GPU, OpenCL)
/// matches TF.js on every reference input, square and not.
fn matches_tfjs_on_every_reference_input(exec: &dyn Executor) {
    let graph = tfjs::load(&common::movenet_json()).expect("load movenet");
    let names = reference_names();
    assert!(names.len() >= 7, "expected at least 7 reference cases, found {}", names.len());
    let mut worst = 0.0f64;
    let mut non_square = 0;
    for name in names {
        let (input, want) = reference(&name);
        if input.shape[1] != input.shape[2] {
            non_square += 1;
        }
        let mut plan = exec.compile(&graph, std::slice::from_ref(&input.shape)).expect("compile");
        let got = plan.run(&[input]).expect("run");
        assert_eq!(got[0].shape, vec![1, 6, 56]);
        let d = got[0].max_abs_diff(&want).expect("same shape");
        println!("{} {name}: max abs diff vs TF.js = {d:.3e}", exec.name());
        assert!(d <= TOL, "{name}: max abs diff {d} > {TOL}");
        worst = worst.max(d);
    }
    assert!(non_square >= 1, "at least one non-square input");
    println!("{} on {}: worst max abs diff = {worst:.3e}", exec.name(), exec.adapter());
}

test_executors!(movenet_matches_tfjs_on_every_reference_input_on, super::matches_tfjs_on_every_reference_input);

/// Each vector path of the CPU executor (AVX-512, AVX2 + FMA, portable), forced, matches
/// TF.js to 1e-3 and the other paths to 1e-5.
#[test]
fn every_cpu_path_matches_tfjs_and_the_others() {
    use walkout::runtime::cpu::Isa;
    let graph = tfjs::load(&common::movenet_json()).expect("load movenet");
    let mut names = reference_names();
    names.truncate(3);
    let paths: Vec<CpuExecutor> =
        [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter_map(|i| CpuExecutor::with_isa(i).ok()).collect();
    assert!(!paths.is_empty());
    for name in names {
        let (input, want) = reference(&name);
        let mut outs = Vec::new();
        for exec in &paths {
            let mut plan = exec.compile(&graph, std::slice::from_ref(&input.shape)).expect("compile");
            let got = plan.run(std::slice::from_ref(&input)).expect("run").remove(0);
            let d = got.max_abs_diff(&want).expect("same shape");
            println!("{name} on {}: max abs diff vs TF.js = {d:.3e}", exec.isa().name());
            assert!(d <= TOL, "{name} on {}: {d} > {TOL}", exec.isa().name());
            outs.push(got);
        }
        for (exec, o) in paths.iter().zip(&outs).skip(1) {
            let d = o.max_abs_diff(&outs[0]).expect("same shape");
            println!("{name}: {} vs {}: {d:.3e}", exec.isa().name(), paths[0].isa().name());
            assert!(d <= 1e-5, "{name}: {} differs from {} by {d}", exec.isa().name(), paths[0].isa().name());
        }
    }
}

/// With inverted-residual blocks fused (off by default), MoveNet still matches TF.js, and
/// the unfused plan to 1e-5.
#[test]
fn fused_blocks_match_tfjs() {
    let graph = tfjs::load(&common::movenet_json()).expect("load movenet");
    let dir = common::fetched("data/reference");
    let input = walkout::npy::read(&dir.join("bus_256x256.input.npy")).expect("input npy");
    let want = walkout::npy::read(&dir.join("bus_256x256.output.npy")).expect("output npy");
    let run = |fuse: bool| {
        let exec = CpuExecutor::new().fusing(fuse);
        let mut plan = exec.compile(&graph, std::slice::from_ref(&input.shape)).expect("compile");
        plan.run(std::slice::from_ref(&input)).expect("run").remove(0)
    };
    let (fused, plain) = (run(true), run(false));
    let d = fused.max_abs_diff(&want).expect("same shape");
    assert!(d <= TOL, "fused: {d} > {TOL} from TF.js");
    let d = fused.max_abs_diff(&plain).expect("same shape");
    assert!(d <= 1e-5, "fused differs from unfused by {d}");
}

/// Person boxes in ultralytics' bus.jpg (810x1080), [x0, y0, x1, y1], as annotated by hand:
/// the three pedestrians fully in view.
use common::{iou, BUS_PEOPLE};

#[test]
fn bus_persons_lie_on_the_people() {
    common::movenet_json();
    let repo = Repository::open(common::root().join("models"));
    let mut pipe = PosePipeline::new(&repo, "movenet-multipose", walkout::runtime::Device::Cpu, None).expect("pipeline");
    let img = walkout::vision::image_io::load(&common::fetched("data/bus.jpg")).expect("bus.jpg");
    let persons = pipe.run(&img).expect("pose");
    for p in &persons {
        println!("person score {:.3} box {:?}", p.score, p.bbox);
    }
    // Every annotated pedestrian is found.
    for gt in &BUS_PEOPLE {
        let best = persons.iter().map(|p| iou(&p.bbox, gt)).fold(0.0, f32::max);
        assert!(best >= 0.5, "pedestrian {gt:?} not found (best IoU {best:.2})");
    }
    // Every confident person lies on a pedestrian, and so do its confident keypoints.
    for p in persons.iter().filter(|p| p.score >= 0.3) {
        let gt = BUS_PEOPLE
            .iter()
            .chain(std::iter::once(&[0.0, 540.0, 70.0, 880.0]))
            .max_by(|a, b| iou(&p.bbox, a).total_cmp(&iou(&p.bbox, b)))
            .unwrap();
        assert!(iou(&p.bbox, gt) >= 0.4, "person {:?} lies on nobody", p.bbox);
        let (mx, my) = ((gt[2] - gt[0]) * 0.15, (gt[3] - gt[1]) * 0.1);
        let kps: Vec<_> = p.keypoints.iter().filter(|k| k.score >= 0.3).collect();
        let inside = kps.iter().filter(|k| k.x >= gt[0] - mx && k.x <= gt[2] + mx && k.y >= gt[1] - my && k.y <= gt[3] + my).count();
        assert!(kps.len() >= 8 && inside == kps.len(), "person {:?}: {inside}/{} keypoints on the body", p.bbox, kps.len());
        // Anatomy: the nose is above the ankles.
        let (nose, la, ra) = (p.keypoints[0], p.keypoints[15], p.keypoints[16]);
        if nose.score > 0.3 && la.score > 0.3 && ra.score > 0.3 {
            assert!(nose.y < la.y && nose.y < ra.y, "person {:?}: nose below ankles", p.bbox);
        }
    }
}

/// The TF.js reference cases in data/reference, by name, sorted.
fn reference_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(common::fetched("data/reference"))
        .expect("read reference dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".input.npy").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// MoveNet exported to ONNX by tf2onnx, as users export it (scripts/export/movenet-onnx),
/// imported and run by walkout on the CPU and GPU executors: every reference input matches
/// TF.js. The export's Resize sizes come from shape arithmetic that folds once the input
/// shape is fixed.
#[test]
fn tf2onnx_export_matches_tfjs_on_cpu_and_gpu() {
    let out = std::process::Command::new(common::root().join("scripts/export/movenet-onnx")).output().unwrap();
    assert!(out.status.success(), "scripts/export/movenet-onnx failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let graph = walkout::graph::onnx::load(&path).expect("import the tf2onnx export");
    let gpu = walkout::runtime::gpu::GpuExecutor::new().expect("a wgpu adapter");
    let execs: [(&str, &dyn Executor); 2] = [("cpu", &CpuExecutor::new()), ("gpu", &gpu)];
    let names = reference_names();
    assert!(names.len() >= 7);
    for (exec_name, exec) in execs {
        for name in &names {
            let (input, want) = reference(name);
            let specialised = walkout::graph::optimize::specialize(&graph, std::slice::from_ref(&input.shape)).unwrap();
            let left: Vec<String> =
                specialised.nodes.iter().filter(|n| matches!(n.op, walkout::graph::Op::Shape)).map(|n| n.name.clone()).collect();
            assert!(left.is_empty(), "{name}: shape arithmetic left after specialisation: {left:?}");
            let mut plan = exec.compile(&graph, std::slice::from_ref(&input.shape)).expect("compile");
            let got = plan.run(&[input]).expect("run").remove(0);
            let d = got.max_abs_diff(&want).expect("same shape");
            println!("{name} on {exec_name}: tf2onnx export vs TF.js max abs diff {d:.3e}");
            assert!(d <= TOL, "{name} on {exec_name}: {d} > {TOL}");
        }
    }
}

fn reference(name: &str) -> (walkout::graph::Tensor, walkout::graph::Tensor) {
    let dir = common::fetched("data/reference");
    (
        walkout::npy::read(&dir.join(format!("{name}.input.npy"))).unwrap(),
        walkout::npy::read(&dir.join(format!("{name}.output.npy"))).unwrap(),
    )
}

#[test]
fn batches_give_the_same_per_frame_results() {
    use walkout::runtime::{compile_batched, concat_batch, slice_batch};
    let graph = tfjs::load(&common::movenet_json()).unwrap();
    let names = ["bus_256x256", "zidane_256x256", "messi5_256x256"];
    let cases: Vec<_> = names.iter().map(|n| reference(n)).collect();
    let batch = concat_batch(&cases.iter().map(|c| c.0.clone()).collect::<Vec<_>>());
    let exec = CpuExecutor::new();
    let mut plan = compile_batched(&exec, &graph, &[vec![1, 256, 256, 3]], 3).unwrap();
    let out = plan.run(&[batch]).unwrap();
    assert_eq!(out[0].shape, vec![3, 6, 56]);
    for (i, (_, want)) in cases.iter().enumerate() {
        let d = slice_batch(&out[0], i).max_abs_diff(want).unwrap();
        assert!(d <= TOL, "{}: frame {i} of the batch differs from TF.js by {d}", names[i]);
    }
}

fn walkout_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_walkout")).args(args).current_dir(common::root()).output().unwrap()
}

#[test]
fn cli_run_bench_and_draw() {
    let dir = std::env::temp_dir().join(format!("walkout-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // models run: .npy in, .npy out, equal to TF.js
    let (input, want) = reference("zidane_256x448");
    let inp = dir.join("in.npy");
    let outp = dir.join("out.npy");
    walkout::npy::write(&inp, &input).unwrap();
    let o = walkout_cli(&[
        "models",
        "run",
        "movenet-multipose",
        "--input",
        inp.to_str().unwrap(),
        "--output",
        outp.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = walkout::npy::read(&outp).unwrap();
    assert!(got.max_abs_diff(&want).unwrap() <= TOL);
    // models bench: last line is JSON with the documented keys
    let o = walkout_cli(&["models", "bench", "movenet-multipose", "--device", "cpu", "--iters", "2", "--warmup", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for key in ["ms_per_batch_median", "fps", "batch", "device", "adapter"] {
        assert!(last.get(key).is_some(), "bench JSON lacks {key}: {last}");
    }
    assert!(last["fps"].as_f64().unwrap() > 0.0);
    // pose --draw writes a viewable image of the same size
    let png = dir.join("bus.png");
    let o = walkout_cli(&["pose", "data/bus.jpg", "--draw", png.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["persons"].as_array().unwrap().len(), 3);
    let drawn = walkout::vision::image_io::load(&png).unwrap();
    assert_eq!((drawn.width(), drawn.height()), (810, 1080));
    let orig = walkout::vision::image_io::load(&common::fetched("data/bus.jpg")).unwrap();
    assert_ne!(drawn.as_raw(), orig.as_raw(), "nothing was drawn");
}
