#![allow(clippy::unwrap_used)]
//! The OpenCL executor (kernels/*.cl, on PoCL here) beyond what `test_executors!` runs on
//! it (the ONNX conformance suite, the ONNX backend tests, MoveNet against TF.js): frames
//! letterboxed and crops cut on the device, the command line, and the server.

mod common;

use walkout::graph::{tfjs, DType, Layout};
use walkout::runtime::opencl::OpenClExecutor;
use walkout::runtime::{compile_batched, Device, Executor, FrameSpec};

fn opencl() -> OpenClExecutor {
    OpenClExecutor::new().expect("an OpenCL device (scripts/setup installs PoCL)")
}

/// Frames of different sizes letterboxed by the OpenCL kernel straight into a MoveNet plan's
/// input give what the WGSL letterbox kernel's input (the same arithmetic, on lavapipe) gives
/// through a plain run.
#[test]
fn run_frames_on_opencl_matches_the_wgsl_letterbox() {
    let g = tfjs::load(&common::movenet_json()).expect("movenet");
    let exec = opencl();
    let bus = walkout::vision::image_io::load(&common::fetched("data/bus.jpg")).unwrap();
    let zidane = walkout::vision::image_io::load(&common::fetched("data/zidane.jpg")).unwrap();
    let frames = [&bus, &zidane];
    let spec = FrameSpec { height: 256, width: 256, layout: Layout::Nhwc, dtype: DType::I32, mean: [0.0; 3], std: [1.0; 3] };
    for batch in [1usize, 2] {
        let frames = &frames[..batch];
        let mut plan = compile_batched(&exec, &g, &[vec![1, 256, 256, 3]], batch).expect("plan");
        assert!(plan.takes_frames(), "MoveNet's input lives on the device");
        let (direct, boxes) = plan.run_frames(frames, &spec).expect("takes frames").expect("run_frames");
        let pre = walkout::runtime::gpu::preprocess::GpuPreprocessor::new(walkout::runtime::gpu::GpuContext::get().expect("wgpu"))
            .expect("preprocessor");
        let (input, boxes2) = pre.run(frames, &spec).expect("letterbox");
        let via_host = plan.run(&[input]).expect("run");
        assert_eq!(boxes, boxes2);
        let d = direct[0].max_abs_diff(&via_host[0]).expect("same shapes");
        println!("batch {batch}: OpenCL letterbox vs WGSL letterbox, max abs diff {d:.2e}");
        // the int32 input rounds: a pixel on a rounding edge may land one step apart
        assert!(d <= 1e-3, "batch {batch}: device-filled input differs by {d}");
    }
}

/// Person crops cut by the OpenCL crop kernel into the ReID model's input give the
/// embeddings the host crops (`vision::crop`) give on the CPU executor.
#[test]
fn crops_on_opencl_embed_as_the_host_crops_do() {
    use walkout::models::Repository;
    use walkout::pipeline::ReidPipeline;
    use walkout::vision::crop::Crop;
    let repo = Repository::open(common::root().join("models"));
    let bus = walkout::vision::image_io::load(&common::fetched("data/bus.jpg")).unwrap();
    let frames = [&bus];
    let crops = [
        Crop { frame: 0, bbox: [50.0, 399.0, 244.0, 903.0] },
        Crop { frame: 0, bbox: [-40.0, 700.0, 120.0, 1200.0] },
        Crop { frame: 0, bbox: [670.0, 380.0, 810.0, 880.0] },
    ];
    let mut on_cl = ReidPipeline::new(&repo, "reid-sim", Device::Opencl).expect("reid on opencl");
    let mut on_cpu = ReidPipeline::new(&repo, "reid-sim", Device::Cpu).expect("reid on cpu");
    let (a, b) = (on_cl.embed(&frames, &crops).unwrap(), on_cpu.embed(&frames, &crops).unwrap());
    for (x, y) in a.iter().zip(&b) {
        let d = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(d <= 1e-3, "embeddings differ by {d}");
    }
}

/// `walkout models run movenet-multipose --device opencl` matches TF.js on a real photo.
#[test]
fn models_run_on_opencl_matches_tfjs() {
    common::movenet_json();
    let dir = common::fetched("data/reference");
    let out = std::env::temp_dir().join(format!("walkout-opencl-{}.npy", std::process::id()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_walkout"))
        .args(["models", "run", "movenet-multipose", "--device", "opencl", "--input"])
        .arg(dir.join("bus_256x256.input.npy"))
        .arg("--output")
        .arg(&out)
        .current_dir(common::root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = walkout::npy::read(&out).unwrap();
    let want = walkout::npy::read(&dir.join("bus_256x256.output.npy")).unwrap();
    let d = got.max_abs_diff(&want).unwrap();
    assert!(d <= 1e-3, "differs from TF.js by {d}");
    let _ = std::fs::remove_file(&out);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Portable Computing Language") || !opencl().adapter().contains("Portable"));
}

/// `walkout serve --device opencl` serves: a mixed batch through the OpenCL letterbox.
#[test]
fn served_batch_of_mixed_sizes_on_opencl() {
    common::served_batch_of_mixed_sizes(Device::Opencl);
}

/// The program binary the device built (`walkout models opencl-binary`) loads through
/// clCreateProgramWithBinary, as an FPGA board's would, and runs MoveNet as the sources do;
/// a corrupt binary is a typed error naming the file.
#[test]
fn a_program_binary_loads_and_a_corrupt_one_is_an_error() {
    common::movenet_json();
    let tmp = std::env::temp_dir().join(format!("walkout-clbin-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let walkout = |env: Option<&std::path::Path>, args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_walkout"));
        c.args(args).current_dir(common::root());
        if let Some(p) = env {
            c.env("WALKOUT_OPENCL_BINARY", p);
        }
        c.output().unwrap()
    };
    let bin = tmp.join("kernels.bin");
    let o = walkout(None, &["models", "opencl-binary", "--out", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let input = common::fetched("data/reference/bus_256x256.input.npy");
    let out = tmp.join("out.npy");
    let run =
        ["models", "run", "movenet-multipose", "--device", "opencl", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()];
    let o = walkout(Some(&bin), &run);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = walkout::npy::read(&common::fetched("data/reference/bus_256x256.output.npy")).unwrap();
    let d = walkout::npy::read(&out).unwrap().max_abs_diff(&want).unwrap();
    assert!(d <= 1e-3, "the binary's program differs from TF.js by {d}");
    let bad = tmp.join("corrupt.bin");
    std::fs::write(&bad, b"not a program").unwrap();
    let o = walkout(Some(&bad), &run);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("corrupt.bin") && !err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}
