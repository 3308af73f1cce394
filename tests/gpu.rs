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
    let mut cases: Vec<_> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".input.npy")).collect();
    cases.sort();
    assert!(cases.len() >= 7);
    let cpu = CpuExecutor::new();
    for p in cases {
        let name = p.file_name().unwrap().to_string_lossy().replace(".input.npy", "");
        let input = walkout::npy::read(&p).unwrap();
        let want = walkout::npy::read(&dir.join(format!("{name}.output.npy"))).unwrap();
        let mut plan = exec.compile(&graph, std::slice::from_ref(&input.shape)).unwrap();
        let got = plan.run(std::slice::from_ref(&input)).unwrap();
        // the whole model, post-processing included, runs on the GPU: no CPU tail
        let prof = plan.profile(std::slice::from_ref(&input)).unwrap().unwrap();
        assert!(prof.untimed.is_empty(), "{name}: nodes left to the CPU: {:?}", prof.untimed);
        assert!(prof.kernels.len() >= 190, "{name}: {} kernels", prof.kernels.len());
        let mut cplan = cpu.compile(&graph, std::slice::from_ref(&input.shape)).unwrap();
        let c = cplan.run(&[input]).unwrap();
        let d = got[0].max_abs_diff(&want).unwrap();
        let dc = got[0].max_abs_diff(&c[0]).unwrap();
        println!("{name}: GPU vs TF.js {d:.2e}, GPU vs CPU {dc:.2e}");
        assert!(d <= 1e-3, "{name}: {d}");
    }
}

#[test]
fn gpu_batches_match_batch_one() {
    let exec = gpu();
    let case = common::fetched("data/onnx-conformance/net_mobilenetv2");
    let g = onnx::load(&case.join("model.onnx")).unwrap();
    // eight different frames
    let frames: Vec<Tensor> = (0..8)
        .map(|k| Tensor::f32(vec![1, 3, 64, 64], (0..3 * 64 * 64).map(|i| (((i * 31 + k * 977) % 255) as f32 / 127.0) - 1.0).collect()))
        .collect();
    let mut one = exec.compile(&g, &[vec![1, 3, 64, 64]]).unwrap();
    let single: Vec<Tensor> = frames.iter().map(|f| one.run(std::slice::from_ref(f)).unwrap().remove(0)).collect();
    for b in [1usize, 3, 8] {
        let mut plan = exec.compile(&g, &[vec![b, 3, 64, 64]]).unwrap();
        let out = plan.run(&[concat_batch(&frames[..b])]).unwrap().remove(0);
        for (k, want) in single.iter().enumerate().take(b) {
            let d = slice_batch(&out, k).max_abs_diff(want).unwrap();
            assert!(d <= 1e-5, "batch {b} frame {k}: {d}");
        }
    }
}

/// Independent CPU reference of the letterbox the GPU kernel computes (half-pixel bilinear).
fn letterbox_ref(img: &image::RgbImage, h: usize, w: usize, c: usize, y: usize, x: usize) -> f32 {
    let lb = walkout::runtime::Letterbox::new(img.width(), img.height(), w, h);
    let rw = ((img.width() as f32 * lb.scale).round() as usize).clamp(1, w);
    let rh = ((img.height() as f32 * lb.scale).round() as usize).clamp(1, h);
    let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
    if x < px || x >= px + rw || y < py || y >= py + rh {
        return 0.0;
    }
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let fx = (((x - px) as f32 + 0.5) * sw as f32 / rw as f32 - 0.5).clamp(0.0, (sw - 1) as f32);
    let fy = (((y - py) as f32 + 0.5) * sh as f32 / rh as f32 - 0.5).clamp(0.0, (sh - 1) as f32);
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(sw - 1), (y0 + 1).min(sh - 1));
    let p = |xx: usize, yy: usize| img.get_pixel(xx as u32, yy as u32)[c] as f32;
    let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * (fx - x0 as f32);
    let bot = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * (fx - x0 as f32);
    top + (bot - top) * (fy - y0 as f32)
}

#[test]
fn gpu_preprocessing_letterboxes_frames_of_any_size() {
    use walkout::graph::{DType, Layout};
    use walkout::runtime::gpu::preprocess::{GpuPreprocessor, PreSpec};
    let exec = gpu();
    let pre = GpuPreprocessor::new(exec.context().clone()).unwrap();
    let imgs: Vec<image::RgbImage> = ["data/bus.jpg", "data/zidane.jpg", "data/messi5.jpg"]
        .iter()
        .map(|p| walkout::vision::image_io::load(&common::fetched(p)).unwrap())
        .collect();
    let refs: Vec<&image::RgbImage> = imgs.iter().collect();
    // MoveNet's input: int32 NHWC 256x256
    let spec = PreSpec { height: 256, width: 256, layout: Layout::Nhwc, dtype: DType::I32, mean: [0.0; 3], std: [1.0; 3] };
    let (t, _) = pre.run(&refs, &spec).unwrap();
    assert_eq!(t.shape, vec![3, 256, 256, 3]);
    let v = t.to_i64_vec().unwrap();
    let mut worst = 0.0f32;
    for (b, img) in imgs.iter().enumerate() {
        for y in (0..256).step_by(7) {
            for x in (0..256).step_by(5) {
                for c in 0..3 {
                    let want = letterbox_ref(img, 256, 256, c, y, x);
                    let got = v[((b * 256 + y) * 256 + x) * 3 + c] as f32;
                    worst = worst.max((got - want.round()).abs());
                }
            }
        }
    }
    assert!(worst <= 1.0, "i32 letterbox differs by {worst}");
    // an NCHW float model input with normalisation
    let spec =
        PreSpec { height: 96, width: 160, layout: Layout::Nchw, dtype: DType::F32, mean: [123.7, 116.3, 103.5], std: [58.4, 57.1, 57.4] };
    let (t, _) = pre.run(&refs, &spec).unwrap();
    assert_eq!(t.shape, vec![3, 3, 96, 160]);
    let f = t.as_f32().unwrap();
    for (b, img) in imgs.iter().enumerate() {
        for c in 0..3 {
            for y in (0..96).step_by(5) {
                for x in (0..160).step_by(3) {
                    let want = (letterbox_ref(img, 96, 160, c, y, x) - spec.mean[c]) / spec.std[c];
                    let got = f[((b * 3 + c) * 96 + y) * 160 + x];
                    assert!((got - want).abs() < 1e-3, "frame {b} c {c} y {y} x {x}: {got} vs {want}");
                }
            }
        }
    }
    // the kernel's output feeds the model: MoveNet finds the three pedestrians on bus.jpg
    let spec = PreSpec { height: 256, width: 256, layout: Layout::Nhwc, dtype: DType::I32, mean: [0.0; 3], std: [1.0; 3] };
    let (t, boxes) = pre.run(&refs[..1], &spec).unwrap();
    let g = tfjs::load(&common::movenet_json()).unwrap();
    let mut plan = exec.compile(&g, &[vec![1, 256, 256, 3]]).unwrap();
    let out = plan.run(&[t]).unwrap();
    let persons = walkout::models::heads::movenet::decode_movenet(&out[0], 0, &boxes[0], imgs[0].width(), imgs[0].height(), 0.25).unwrap();
    // bilinear sampling without antialiasing: the two main pedestrians at least
    let gt = [[50.0f32, 399.0, 244.0, 903.0], [223.0, 407.0, 344.0, 857.0]];
    for g in &gt {
        let best = persons.iter().map(|p| walkout::perception::iou(&p.bbox, g)).fold(0.0, f64::max);
        assert!(best >= 0.5, "pedestrian {g:?} not found: {persons:?}");
    }
}

/// The one CPU letterbox (`vision::letterbox`) against the GPU kernel where both filters
/// agree: enlarging, where the triangle filter is plain half-pixel bilinear. (Shrinking, the
/// CPU one antialiases and the kernel does not; the CPU one is checked against `image`'s
/// Triangle resize in its unit test.) Frames of two sizes, both layouts, with normalisation.
#[test]
fn cpu_letterbox_matches_the_gpu_kernel_when_enlarging() {
    use walkout::graph::{DType, Layout};
    use walkout::runtime::gpu::preprocess::{GpuPreprocessor, PreSpec};
    use walkout::vision::letterbox::letterbox_batch;
    let pre = GpuPreprocessor::new(gpu().context().clone()).unwrap();
    let a = image::RgbImage::from_fn(120, 90, |x, y| image::Rgb([(x * 2) as u8, (y * 2) as u8, ((x * y) % 251) as u8]));
    let b = image::imageops::thumbnail(&walkout::vision::image_io::load(&common::fetched("data/bus.jpg")).unwrap(), 60, 80);
    let frames = [&a, &b];
    for layout in [Layout::Nhwc, Layout::Nchw] {
        let spec = PreSpec { height: 192, width: 256, layout, dtype: DType::F32, mean: [10.0, 20.0, 30.0], std: [2.0, 4.0, 8.0] };
        let (gpu_t, gpu_boxes) = pre.run(&frames, &spec).unwrap();
        let (cpu_t, cpu_boxes) = letterbox_batch(&frames, &spec);
        assert_eq!(gpu_t.shape, cpu_t.shape);
        assert_eq!(gpu_boxes, cpu_boxes);
        let (g, c) = (gpu_t.as_f32().unwrap(), cpu_t.as_f32().unwrap());
        // the CPU letterbox rounds pixels to integers before normalising: half a grey level,
        // over the smallest std
        let tol = 0.5 / 2.0 + 1e-3;
        let worst = g.iter().zip(c).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        let mean = g.iter().zip(c).map(|(p, q)| (p - q).abs() as f64).sum::<f64>() / g.len() as f64;
        assert!(worst <= tol, "{layout:?}: CPU and GPU letterboxes differ by {worst} (mean {mean})");
    }
}

#[test]
fn movenet_batch_on_gpu_matches_tfjs_per_frame() {
    use walkout::runtime::compile_batched;
    let exec = gpu();
    let graph = tfjs::load(&common::movenet_json()).unwrap();
    let dir = common::fetched("data/reference");
    let names = ["bus_256x256", "zidane_256x256"];
    let ins: Vec<Tensor> = names.iter().map(|n| walkout::npy::read(&dir.join(format!("{n}.input.npy"))).unwrap()).collect();
    // MoveNet fixes batch 1: the backbone runs batched, the post-processing per frame
    let mut plan = compile_batched(&exec, &graph, &[vec![1, 256, 256, 3]], 2).unwrap();
    let out = plan.run(&[concat_batch(&ins)]).unwrap().remove(0);
    assert_eq!(out.shape, vec![2, 6, 56]);
    for (k, n) in names.iter().enumerate() {
        let want = walkout::npy::read(&dir.join(format!("{n}.output.npy"))).unwrap();
        let d = slice_batch(&out, k).max_abs_diff(&want).unwrap();
        assert!(d <= 1e-3, "{n}: {d}");
    }
    // its profile times the batched backbone once and the post-processing once per frame
    let prof = plan.profile(&[concat_batch(&ins)]).unwrap().expect("a split plan profiles");
    let count = |k: &str| prof.kernels.iter().filter(|t| t.kernel == k).count();
    let mut one = exec.compile(&graph, &[vec![1, 256, 256, 3]]).unwrap();
    let single = one.profile(std::slice::from_ref(&ins[0])).unwrap().unwrap();
    let count1 = |k: &str| single.kernels.iter().filter(|t| t.kernel == k).count();
    assert_eq!(count("conv_tiled") + count("conv_gemm"), count1("conv_tiled") + count1("conv_gemm"));
    assert_eq!((count("topk"), count("argmax")), (2 * count1("topk"), 2 * count1("argmax")));
    assert!(count1("topk") >= 1 && prof.untimed.is_empty(), "{:?}", prof.untimed);
}

/// The server on the GPU executor: frames of different sizes go through the GPU letterbox
/// kernel into one batch; the pedestrians of bus.jpg are found in a mixed batch.
#[test]
fn served_batch_of_mixed_sizes_on_gpu() {
    common::served_batch_of_mixed_sizes(walkout::runtime::Device::Gpu);
}

/// Frames letterboxed by the GPU kernel straight into a plan's input buffer (no host round
/// trip) give the same outputs as the same kernel's tensor read back and run.
#[test]
fn plan_run_frames_matches_run_on_the_read_back_input() {
    use walkout::graph::{DType, Layout};
    use walkout::runtime::gpu::preprocess::{GpuPreprocessor, PreSpec};
    let g = tfjs::load(&common::movenet_json()).expect("movenet");
    let exec = gpu();
    let bus = walkout::vision::image_io::load(&common::fetched("data/bus.jpg")).expect("bus");
    let zidane = walkout::vision::image_io::load(&common::fetched("data/zidane.jpg")).expect("zidane");
    let frames = [&bus, &zidane];
    let spec = PreSpec { height: 256, width: 256, layout: Layout::Nhwc, dtype: DType::I32, mean: [0.0; 3], std: [1.0; 3] };
    for batch in [1usize, 2] {
        let frames = &frames[..batch];
        let mut plan = walkout::runtime::compile_batched(&exec, &g, &[vec![1, 256, 256, 3]], batch).expect("plan");
        let (direct, boxes) = plan.run_frames(frames, &spec).expect("MoveNet takes frames on the device").expect("run_frames");
        let pre = GpuPreprocessor::new(exec.context().clone()).expect("preprocessor");
        let (input, boxes2) = pre.run(frames, &spec).expect("letterbox");
        let via_host = plan.run(&[input]).expect("run");
        assert_eq!(boxes, boxes2);
        let d = direct[0].max_abs_diff(&via_host[0]).expect("same shapes");
        assert!(d <= 1e-5, "batch {batch}: device-filled input differs by {d}");
    }
}

/// The GPU crop kernel against the host's `vision::crop::crop_batch`: boxes inside, across
/// and outside the frame, tiny and wide ones, a padding crop, both layouts and both dtypes.
#[test]
fn gpu_crops_match_the_host_crops() {
    use walkout::graph::{DType, Layout};
    use walkout::runtime::gpu::preprocess::{GpuPreprocessor, PreSpec};
    use walkout::vision::crop::{crop_batch, crop_rect, Crop};
    let pre = GpuPreprocessor::new(gpu().context().clone()).unwrap();
    let bus = walkout::vision::image_io::load(&common::fetched("data/bus.jpg")).unwrap();
    let zidane = walkout::vision::image_io::load(&common::fetched("data/zidane.jpg")).unwrap();
    let frames = [&bus, &zidane];
    let crops = [
        Crop { frame: 0, bbox: [50.0, 399.0, 244.0, 903.0] },
        Crop { frame: 1, bbox: [740.0, 40.0, 1150.0, 710.0] },
        Crop { frame: 0, bbox: [-40.0, 700.0, 120.0, 1200.0] },
        Crop { frame: 1, bbox: [10.0, 10.0, 13.0, 12.0] },
        Crop { frame: 1, bbox: [0.0, 300.0, 1280.0, 420.0] },
        Crop { frame: usize::MAX, bbox: [0.0; 4] },
    ];
    for spec in [
        PreSpec { height: 64, width: 32, layout: Layout::Nchw, dtype: DType::F32, mean: [127.5; 3], std: [64.0; 3] },
        PreSpec { height: 128, width: 64, layout: Layout::Nhwc, dtype: DType::I32, mean: [0.0; 3], std: [1.0; 3] },
    ] {
        let want = crop_batch(&frames, &crops, &spec);
        let rects: Vec<_> =
            crops.iter().map(|c| ((c.frame < frames.len()).then_some(c.frame), crop_rect(c.bbox, spec.width, spec.height))).collect();
        let got = pre.crops(&frames, &rects, &spec).unwrap();
        assert_eq!(got.shape, want.shape);
        let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
        let worst = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f64, f64::max);
        // f32: the same arithmetic; i32: a value on a rounding edge may land one step apart
        let tol = if spec.dtype == DType::I32 { 1.0 } else { 1e-4 };
        assert!(worst <= tol, "{spec:?}: worst difference {worst}");
        let pad = g.len() / crops.len();
        assert!(g[g.len() - pad..].iter().all(|&v| v == 0.0), "the padding crop is zeros");
    }
}

/// A plan with a value over the adapter's largest storage binding is refused when it is
/// compiled, naming a value that needs it: wgpu would only log the bind group's validation error and
/// leave the kernel unrun (an H100 binds at most 2 GiB; MoveNet at batch 256 wants 2.25).
#[test]
fn a_value_over_the_largest_binding_is_refused_at_compile() {
    use common::graphs::B;
    use walkout::graph::{Graph, Op, UnOp};
    let exec = gpu();
    let exp_of = |shape: &[usize]| {
        let mut b = B(Graph::default());
        let x = b.input("x", shape);
        let y = b.node("big_exp", Op::Unary(UnOp::Exp), &[x]);
        b.0.outputs.push(y);
        b.0
    };
    // 2^30 floats, 4 GiB: more than any adapter binds (a binding's size is a u32), and nothing
    // is allocated before the check
    let big = [1024, 1 << 20];
    let err = exec.compile(&exp_of(&big), &[big.to_vec()]).expect_err("refused").to_string();
    assert!(err.contains("largest storage binding") && err.contains("needs a 4294967296-byte buffer"), "{err}");
    // the same graph at a size that fits compiles and runs
    let small = [1, 1 << 20];
    let mut plan = exec.compile(&exp_of(&small), &[small.to_vec()]).unwrap();
    let out = plan.run(&[Tensor::f32(small.to_vec(), vec![0.0; 1 << 20])]).unwrap();
    assert_eq!(out[0].to_f64_vec()[7], 1.0);
}
