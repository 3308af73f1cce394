#![allow(clippy::unwrap_used)]
//! Depthwise + pointwise fusion on wgpu (`runtime::gpu::fuse`, `dwpw_tiled` in
//! `shaders/gemm.wgsl`): a fused pair runs as one kernel and gives what the two kernels and the
//! CPU executor give, with vec4 and scalar loads, strides and residuals, on f32 and f16
//! storage; a depthwise output something else reads stays unfused; MoveNet fused stays within
//! 1e-3 of TF.js.

mod common;

use common::graphs::{conv, rand, B};
use walkout::graph::*;
use walkout::runtime::{cpu::CpuExecutor, gpu::GpuExecutor, Executor, Precision};

/// x [1, h, w, c] -> depthwise 3x3 (stride, relu6) -> 1x1 conv to `cout` (bias, optionally
/// plus a residual input of the output's shape); `expose` also makes the depthwise output a
/// graph output.
fn pair(c: usize, cout: usize, hw: usize, stride: usize, residual: bool, expose: bool) -> (Graph, Vec<Tensor>) {
    let mut b = B(Graph::default());
    let x = b.input("x", &[1, hw, hw, c]);
    let dw = b.konst(Tensor::f32(vec![3, 3, 1, c], rand(9 * c, 1)));
    let db = b.konst(Tensor::f32(vec![c], rand(c, 2)));
    let d = b.node("depthwise", conv(Activation::Relu6, c, stride), &[x, dw, db]);
    let pw = b.konst(Tensor::f32(vec![1, 1, c, cout], rand(c * cout, 3)));
    let pb = b.konst(Tensor::f32(vec![cout], rand(cout, 4)));
    let oh = hw.div_ceil(stride);
    let mut inputs = vec![Tensor::f32(vec![1, hw, hw, c], rand(hw * hw * c, 5).iter().map(|v| v * 3.0).collect())];
    let y = if residual {
        let r = b.input("r", &[1, oh, oh, cout]);
        inputs.push(Tensor::f32(vec![1, oh, oh, cout], rand(oh * oh * cout, 6)));
        let mut op = conv(Activation::None, 1, 1);
        if let Op::Conv2d(a) = &mut op {
            a.residual = Some(ResidualAt::BeforeAct);
        }
        b.node("pointwise", op, &[d, pw, pb, r])
    } else {
        b.node("pointwise", conv(Activation::None, 1, 1), &[d, pw, pb])
    };
    b.0.outputs = if expose { vec![y, d] } else { vec![y] };
    (b.0, inputs)
}

fn run(exec: &dyn Executor, g: &Graph, inputs: &[Tensor]) -> (Vec<Tensor>, Vec<String>) {
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
    let mut plan = exec.compile(g, &shapes).unwrap();
    let out = plan.run(inputs).unwrap();
    let kernels = plan.profile(inputs).unwrap().unwrap().kernels.into_iter().map(|k| k.kernel).collect();
    (out, kernels)
}

fn gpu(fuse: bool) -> GpuExecutor {
    GpuExecutor::new().expect("a wgpu adapter (scripts/setup installs lavapipe)").with_fusion(fuse)
}

#[test]
fn a_fused_pair_is_one_kernel_and_matches_the_two() {
    // vec4 loads (channels % 4 == 0) and scalar ones, stride 1 and 2, ragged tiles, residual
    let cases = [(16, 24, 13, 1, false), (32, 40, 9, 2, true), (6, 10, 7, 1, false), (12, 130, 11, 2, false)];
    for (c, cout, hw, stride, residual) in cases {
        let (g, inputs) = pair(c, cout, hw, stride, residual, false);
        let want =
            CpuExecutor::new().compile(&g, &inputs.iter().map(|t| t.shape.clone()).collect::<Vec<_>>()).unwrap().run(&inputs).unwrap();
        let (apart, k2) = run(&gpu(false), &g, &inputs);
        let (fused, k1) = run(&gpu(true), &g, &inputs);
        assert_eq!(k1, vec!["dwpw_tiled"], "{c}->{cout}: the pair runs as one kernel");
        assert_eq!(k2.len(), 2, "{c}->{cout}: unfused, two kernels: {k2:?}");
        let scale = want[0].to_f64_vec().iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        let d_cpu = fused[0].max_abs_diff(&want[0]).unwrap() / scale;
        let d_two = fused[0].max_abs_diff(&apart[0]).unwrap() / scale;
        println!("{c}->{cout} {hw}x{hw} stride {stride}: fused vs CPU {d_cpu:.2e}, vs the two kernels {d_two:.2e}");
        assert!(d_cpu <= 1e-5 && d_two <= 1e-5, "{c}->{cout}: {d_cpu} from the CPU, {d_two} from the two kernels");
    }
}

#[test]
fn a_depthwise_output_read_elsewhere_stays_unfused() {
    let (g, inputs) = pair(16, 24, 9, 1, false, true);
    let (out, kernels) = run(&gpu(true), &g, &inputs);
    assert!(!kernels.iter().any(|k| k == "dwpw_tiled"), "{kernels:?}");
    let want = CpuExecutor::new().compile(&g, &[inputs[0].shape.clone()]).unwrap().run(&inputs).unwrap();
    for (a, b) in out.iter().zip(&want) {
        assert!(a.max_abs_diff(b).unwrap() <= 1e-4);
    }
}

#[test]
fn a_fused_pair_on_f16_storage_matches_the_cpu() {
    let gpu16 = gpu(true).with_precision(Precision::F16);
    assert!(gpu16.has_f16());
    // a last 1x1 conv keeps the pair inside the f16 trunk
    let (mut g, inputs) = pair(16, 24, 13, 1, false, false);
    let mut b = B(g);
    let hw = b.konst(Tensor::f32(vec![1, 1, 24, 8], rand(24 * 8, 7)));
    let hb = b.konst(Tensor::f32(vec![8], rand(8, 8)));
    let y = b.0.outputs[0];
    let head = b.node("head", conv(Activation::None, 1, 1), &[y, hw, hb]);
    b.0.outputs = vec![head];
    g = b.0;
    let want = CpuExecutor::new().compile(&g, &[inputs[0].shape.clone()]).unwrap().run(&inputs).unwrap();
    let (got, kernels) = run(&gpu16, &g, &inputs);
    assert!(kernels.iter().any(|k| k == "dwpw_tiled"), "{kernels:?}");
    let scale = want[0].to_f64_vec().iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    let d = got[0].max_abs_diff(&want[0]).unwrap() / scale;
    println!("fused on f16 storage vs CPU: {d:.2e} of scale");
    assert!(d <= 1e-2, "{d}");
}

#[test]
fn movenet_fused_stays_within_1e_3_of_tfjs() {
    let graph = tfjs::load(&common::movenet_json()).unwrap();
    let dir = common::fetched("data/reference");
    for name in ["bus_256x256", "zidane_256x448"] {
        let input = walkout::npy::read(&dir.join(format!("{name}.input.npy"))).unwrap();
        let want = walkout::npy::read(&dir.join(format!("{name}.output.npy"))).unwrap();
        let (got, kernels) = run(&gpu(true), &graph, std::slice::from_ref(&input));
        let pairs = kernels.iter().filter(|k| *k == "dwpw_tiled").count();
        let d = got[0].max_abs_diff(&want).unwrap();
        println!("{name}: {pairs} fused pairs, max abs diff vs TF.js {d:.2e}");
        assert!(pairs >= 20, "MoveNet's MobileNetV2 blocks fuse ({pairs})");
        assert!(d <= 1e-3, "{name}: {d}");
    }
}
