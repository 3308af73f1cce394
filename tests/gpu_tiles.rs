#![allow(clippy::unwrap_used)]
//! The wgpu executor's tuned kernels. GEMM tiles (`runtime::gpu::tiles`, `shaders/gemm.wgsl`):
//! every specialisation validates with naga, and on the adapter (lavapipe in CI) every tile,
//! with scalar and vec4 loads, gives what the portable kernels and the CPU executor give on
//! ragged convolutions and MatMuls, MoveNet stays within 1e-3 of TF.js on each tile, and the
//! autotune's table persists; the vec4 depthwise kernel matches the CPU. Subgroup reductions (`runtime::gpu::subgroups`): long rows
//! reduce and softmax as the CPU executor does.

mod common;

use walkout::graph::*;
use walkout::runtime::gpu::tiles::{self, Forced, CANDIDATES};
use walkout::runtime::{cpu::CpuExecutor, gpu::GpuExecutor, Executor};

fn rand(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn one_node(op: Op, x_shape: &[usize], consts: Vec<Tensor>) -> Graph {
    Graph::one_node(op, x_shape, consts)
}

struct ConvCase {
    layout: Layout,
    n: usize,
    c: usize,
    hw: [usize; 2],
    k: usize,
    stride: usize,
    dilation: usize,
    groups: usize,
    cout: usize,
    residual: bool,
}

fn conv_graph(cc: &ConvCase) -> (Graph, Vec<usize>) {
    let a = ConvAttrs {
        layout: cc.layout,
        strides: [cc.stride; 2],
        dilations: [cc.dilation; 2],
        padding: Padding::SameUpper,
        groups: cc.groups,
        has_bias: true,
        act: Activation::Relu6,
        residual: cc.residual.then_some(ResidualAt::BeforeAct),
    };
    let cpg = cc.c / cc.groups;
    let shape = match cc.layout {
        Layout::Nhwc => vec![cc.n, cc.hw[0], cc.hw[1], cc.c],
        Layout::Nchw => vec![cc.n, cc.c, cc.hw[0], cc.hw[1]],
    };
    let mut consts = vec![
        Tensor::f32(vec![cc.k, cc.k, cpg, cc.cout], rand(cc.k * cc.k * cpg * cc.cout, 1)),
        Tensor::f32(vec![cc.cout], rand(cc.cout, 2)),
    ];
    if cc.residual {
        let (oh, ow) = (cc.hw[0].div_ceil(cc.stride), cc.hw[1].div_ceil(cc.stride));
        let rs = match cc.layout {
            Layout::Nhwc => vec![cc.n, oh, ow, cc.cout],
            Layout::Nchw => vec![cc.n, cc.cout, oh, ow],
        };
        consts.push(Tensor::f32(rs.clone(), rand(numel(&rs), 4)));
    }
    (one_node(Op::Conv2d(a), &shape, consts), shape)
}

fn conv_cases() -> Vec<ConvCase> {
    let base =
        ConvCase { layout: Layout::Nhwc, n: 1, c: 16, hw: [13, 11], k: 3, stride: 1, dilation: 1, groups: 1, cout: 24, residual: false };
    vec![
        // vec4 A and B
        ConvCase { ..base },
        // RGB input: scalar A, strided
        ConvCase { c: 3, hw: [17, 19], stride: 2, cout: 20, ..base },
        // grouped, 5 outputs per group: vec4 A, scalar B
        ConvCase { c: 8, groups: 2, cout: 10, ..base },
        // 1x1 to many channels over a ragged M, with a residual
        ConvCase { n: 2, c: 12, hw: [23, 23], k: 1, cout: 130, residual: true, ..base },
        // dilated, 3 input channels per group: scalar A
        ConvCase { c: 6, groups: 2, k: 3, dilation: 2, cout: 8, ..base },
        // NCHW: the channel stride is not 1, so scalar A
        ConvCase { layout: Layout::Nchw, c: 16, cout: 36, ..base },
        // a layer tall enough for the big tiles' defaults
        ConvCase { n: 3, c: 32, hw: [48, 48], k: 1, cout: 144, ..base },
    ]
}

fn matmul_cases() -> Vec<(Graph, Vec<usize>)> {
    let mm = |ta: bool, tb: bool, a: Vec<usize>, b: Vec<usize>| {
        let bt = Tensor::f32(b.clone(), rand(numel(&b), 7));
        (one_node(Op::MatMul { transpose_a: ta, transpose_b: tb }, &a, vec![bt]), a)
    };
    vec![
        // vec4 A and B, batched A against one B
        mm(false, false, vec![2, 37, 20], vec![20, 44]),
        // ragged everything: scalar A and B
        mm(false, false, vec![37, 19], vec![19, 45]),
        // B transposed: scalar B
        mm(false, true, vec![3, 70, 32], vec![3, 66, 32]),
        // A transposed: scalar A
        mm(true, false, vec![40, 130], vec![40, 136]),
        // larger than one 128x128 tile
        mm(false, false, vec![300, 64], vec![64, 260]),
    ]
}

fn run(exec: &dyn Executor, g: &Graph, shape: &[usize]) -> Tensor {
    let x = Tensor::f32(shape.to_vec(), rand(numel(shape), 3));
    let mut plan = exec.compile(g, &[shape.to_vec()]).unwrap();
    plan.run(&[x]).unwrap().remove(0)
}

#[test]
fn every_specialisation_validates() {
    for t in CANDIDATES {
        for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
            let src = tiles::source(&t, a, b, false);
            assert!(src.contains(&format!("const RM: u32 = {}u;", t.rm)), "{}: the TILE block was not rewritten", t.name());
            let m = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{} {a} {b}: {}", t.name(), e.emit_to_string(&src)));
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
                .validate(&m)
                .unwrap_or_else(|e| panic!("{} {a} {b}: {e:?}", t.name()));
        }
    }
}

#[test]
fn every_tile_matches_the_portable_kernels_and_the_cpu() {
    let cpu = CpuExecutor::new();
    let portable = GpuExecutor::with_tiles(Forced::Portable).expect("a wgpu adapter (scripts/setup installs lavapipe)");
    let max_smem = portable.context().device.limits().max_compute_workgroup_storage_size;
    let mut graphs: Vec<(String, Graph, Vec<usize>)> =
        conv_cases().iter().enumerate().map(|(i, c)| (format!("conv{i}"), conv_graph(c).0, conv_graph(c).1)).collect();
    graphs.extend(matmul_cases().into_iter().enumerate().map(|(i, (g, s))| (format!("matmul{i}"), g, s)));
    let mut checked = 0;
    for (name, g, shape) in &graphs {
        let want = run(&cpu, g, shape);
        let base = run(&portable, g, shape);
        let scale = want.as_f32().unwrap().iter().fold(1f64, |m, v| m.max(v.abs() as f64));
        assert!(base.max_abs_diff(&want).unwrap() <= 1e-5 * scale, "{name}: portable GPU kernel against the CPU");
        for t in CANDIDATES.iter().filter(|t| t.smem_bytes() <= max_smem) {
            let exec = GpuExecutor::with_tiles(Forced::Tile(*t)).unwrap();
            let mut plan = exec.compile(g, std::slice::from_ref(shape)).unwrap();
            let x = Tensor::f32(shape.to_vec(), rand(numel(shape), 3));
            let got = plan.run(std::slice::from_ref(&x)).unwrap().remove(0);
            let prof = plan.profile(&[x]).unwrap().unwrap();
            assert!(prof.kernels.iter().any(|k| k.kernel.ends_with("_tiled")), "{name} {}: {:?}", t.name(), prof.kernels);
            let d = got.max_abs_diff(&base).unwrap();
            let dc = got.max_abs_diff(&want).unwrap();
            assert!(d <= 1e-5 * scale && dc <= 1e-5 * scale, "{name} on {}: {d:e} against portable, {dc:e} against the CPU", t.name());
            checked += 1;
        }
    }
    assert!(checked >= graphs.len() * 5, "{checked} tile runs");
}

#[test]
fn movenet_matches_tfjs_on_every_tile() {
    let graph = tfjs::load(&common::movenet_json()).unwrap();
    let dir = common::fetched("data/reference");
    let mut cases: Vec<_> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".input.npy")).collect();
    cases.sort();
    let p = &cases[0];
    let input = walkout::npy::read(p).unwrap();
    let want = walkout::npy::read(&dir.join(p.file_name().unwrap().to_string_lossy().replace(".input.npy", ".output.npy"))).unwrap();
    for t in CANDIDATES {
        let exec = GpuExecutor::with_tiles(Forced::Tile(t)).unwrap();
        let mut plan = exec.compile(&graph, std::slice::from_ref(&input.shape)).unwrap();
        let got = plan.run(std::slice::from_ref(&input)).unwrap();
        let d = got[0].max_abs_diff(&want).unwrap();
        println!("{}: MoveNet against TF.js {d:.2e}", t.name());
        assert!(d <= 1e-3, "{}: {d}", t.name());
    }
}

#[test]
fn the_autotune_keeps_a_table_per_adapter_and_reuses_it() {
    let cache = std::env::temp_dir().join(format!("walkout-autotune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let bench = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_walkout"))
            .args(["models", "bench", "reid-sim", "--device", "gpu", "--iters", "1", "--warmup", "0"])
            .current_dir(common::root())
            .env("WALKOUT_GPU_AUTOTUNE", "1")
            .env("WALKOUT_CACHE", &cache)
            .env_remove("WALKOUT_GPU_TILES")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    bench();
    let files: Vec<_> = std::fs::read_dir(cache.join("gpu-tiles")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 1, "one table for the one adapter: {files:?}");
    let table: std::collections::HashMap<String, String> = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert!(table.keys().any(|k| k.starts_with("conv:")), "{table:?}");
    for (class, tile) in &table {
        assert!(matches!(tiles::parse_forced(tile), Ok(Forced::Tile(_))), "{class}: {tile}");
    }
    // a second process finds every class in the table and tunes nothing
    let before = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    bench();
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), before, "the table was rewritten");
    std::fs::remove_dir_all(&cache).unwrap();
}

fn x_for(shape: &[usize], near_one: bool) -> Tensor {
    let v = rand(numel(shape), 11);
    Tensor::f32(shape.to_vec(), if near_one { v.iter().map(|x| 1.0 + x * 0.01).collect() } else { v })
}

#[test]
fn long_rows_reduce_with_subgroups_as_the_cpu_does() {
    let gpu = GpuExecutor::new().expect("a wgpu adapter (scripts/setup installs lavapipe)");
    if !gpu.context().device.features().contains(wgpu::Features::SUBGROUP) {
        println!("skipped: {} has no subgroups", gpu.adapter());
        return;
    }
    let cpu = CpuExecutor::new();
    let reduce = |op: ReduceOp, shape: Vec<usize>, axes: Vec<i64>| {
        let a = Tensor::i64(vec![axes.len()], axes);
        (Graph::one_node(Op::Reduce { op, keep_dims: false }, &shape, vec![a]), shape)
    };
    let softmax = |log: bool, shape: Vec<usize>| (Graph::one_node(Op::Softmax { axis: -1, legacy: false, log }, &shape, vec![]), shape);
    let cases = vec![
        ("sum", reduce(ReduceOp::Sum, vec![5, 1000], vec![1])),
        ("mean", reduce(ReduceOp::Mean, vec![5, 1000], vec![1])),
        ("max", reduce(ReduceOp::Max, vec![5, 1000], vec![1])),
        ("min", reduce(ReduceOp::Min, vec![5, 1000], vec![1])),
        ("prod", reduce(ReduceOp::Prod, vec![3, 300], vec![1])),
        ("sum of everything", reduce(ReduceOp::Sum, vec![7, 9, 31], vec![0, 1, 2])),
        ("global average pool", (Graph::one_node(Op::GlobalPool(PoolKind::Avg), &[2, 8, 33, 33], vec![]), vec![2, 8, 33, 33])),
        ("global max pool", (Graph::one_node(Op::GlobalPool(PoolKind::Max), &[2, 8, 33, 33], vec![]), vec![2, 8, 33, 33])),
        ("softmax", softmax(false, vec![3, 517])),
        ("log-softmax", softmax(true, vec![3, 517])),
    ];
    for (name, (g, shape)) in cases {
        let x = x_for(&shape, name == "prod");
        let want = cpu.compile(&g, std::slice::from_ref(&shape)).unwrap().run(std::slice::from_ref(&x)).unwrap().remove(0);
        let mut plan = gpu.compile(&g, std::slice::from_ref(&shape)).unwrap();
        let got = plan.run(std::slice::from_ref(&x)).unwrap().remove(0);
        let prof = plan.profile(&[x]).unwrap().unwrap();
        assert!(prof.kernels.iter().any(|k| k.kernel.ends_with("_rows")), "{name}: {:?}", prof.kernels);
        let scale = want.as_f32().unwrap().iter().fold(1f64, |m, v| m.max(v.abs() as f64));
        let d = got.max_abs_diff(&want).unwrap();
        println!("{name}: {d:.2e}");
        assert!(d <= 1e-5 * scale, "{name}: {d:e} against the CPU");
    }
}

#[test]
fn nhwc_depthwise_runs_four_channels_a_thread_as_the_cpu_does() {
    let cpu = CpuExecutor::new();
    let gpu = GpuExecutor::new().expect("a wgpu adapter (scripts/setup installs lavapipe)");
    let portable = GpuExecutor::with_tiles(Forced::Portable).unwrap();
    let dw = |c: usize, hw: [usize; 2], stride: usize, dilation: usize, residual: bool, layout: Layout| ConvCase {
        layout,
        n: 2,
        c,
        hw,
        k: 3,
        stride,
        dilation,
        groups: c,
        cout: c,
        residual,
    };
    let cases = [
        (dw(16, [13, 11], 1, 1, true, Layout::Nhwc), "depthwise_v4"),
        (dw(24, [17, 19], 2, 1, false, Layout::Nhwc), "depthwise_v4"),
        (dw(12, [7, 5], 1, 2, false, Layout::Nhwc), "depthwise_v4"),
        // channels not a multiple of 4, and NCHW, stay on the portable kernel
        (dw(6, [9, 9], 1, 1, false, Layout::Nhwc), "depthwise"),
        (dw(16, [9, 9], 1, 1, false, Layout::Nchw), "depthwise"),
    ];
    for (i, (cc, kernel)) in cases.iter().enumerate() {
        let (g, shape) = conv_graph(cc);
        let x = Tensor::f32(shape.clone(), rand(numel(&shape), 3));
        let want = run(&cpu, &g, &shape);
        let base = run(&portable, &g, &shape);
        let mut plan = gpu.compile(&g, std::slice::from_ref(&shape)).unwrap();
        let got = plan.run(std::slice::from_ref(&x)).unwrap().remove(0);
        let prof = plan.profile(&[x]).unwrap().unwrap();
        assert_eq!(prof.kernels.iter().map(|k| k.kernel.as_str()).collect::<Vec<_>>(), [*kernel], "case {i}");
        let (d, dc) = (got.max_abs_diff(&base).unwrap(), got.max_abs_diff(&want).unwrap());
        assert!(d <= 1e-6 && dc <= 1e-5, "case {i}: {d:e} against the portable kernel, {dc:e} against the CPU");
    }
}

#[test]
fn the_cooperative_matrix_kernels_validate_and_compile_to_spirv() {
    // naga: parse, validate with the capabilities the feature brings, and write SPIR-V for
    // both entry points (what wgpu hands a Vulkan driver)
    let src = walkout::runtime::gpu::kernels::shader_source("gemm_coop.wgsl").unwrap();
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
    let caps = naga::valid::Capabilities::COOPERATIVE_MATRIX
        | naga::valid::Capabilities::SHADER_FLOAT16
        | naga::valid::Capabilities::SUBGROUP
        | naga::valid::Capabilities::SUBGROUP_BARRIER;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .unwrap();
    for entry in ["conv_coop", "matmul_coop"] {
        let pipeline = naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: entry.into() };
        let words = naga::back::spv::write_vec(&module, &info, &naga::back::spv::Options::default(), Some(&pipeline)).unwrap();
        assert!(words.len() > 100 && words[0] == 0x0723_0203, "{entry}: not SPIR-V");
    }
    // on an adapter with f16 cooperative matrices, the kernels against the CPU at f16 accuracy
    let gpu = GpuExecutor::with_tiles(Forced::Coop).expect("a wgpu adapter (scripts/setup installs lavapipe)");
    if !tiles::coop_offered(gpu.context()) {
        println!("{}: no f16 cooperative matrices, the kernels are not run", gpu.adapter());
        return;
    }
    let cpu = CpuExecutor::new();
    let mut graphs: Vec<(Graph, Vec<usize>)> = conv_cases().iter().map(conv_graph).collect();
    graphs.extend(matmul_cases());
    for (i, (g, shape)) in graphs.iter().enumerate() {
        let (want, got) = (run(&cpu, g, shape), run(&gpu, g, shape));
        let scale = want.as_f32().unwrap().iter().fold(1f64, |m, v| m.max(v.abs() as f64));
        let d = got.max_abs_diff(&want).unwrap();
        println!("case {i}: {d:.2e} (scale {scale:.1})");
        assert!(d <= 1e-2 * scale, "case {i}: {d:e}");
    }
}

#[test]
fn a_launch_past_the_dispatch_limit_is_an_error_and_the_tiles_fold_it() {
    // 1x1 conv over 2048x2049 pixels: 65,568 portable 64-row tiles, past the 65,535 limit
    let cc =
        ConvCase { layout: Layout::Nhwc, n: 1, c: 4, hw: [2048, 2049], k: 1, stride: 1, dilation: 1, groups: 1, cout: 4, residual: false };
    let (g, shape) = conv_graph(&cc);
    let portable = GpuExecutor::with_tiles(Forced::Portable).expect("a wgpu adapter (scripts/setup installs lavapipe)");
    let Err(err) = portable.compile(&g, std::slice::from_ref(&shape)) else { panic!("the portable launch is too large") };
    assert!(err.to_string().contains("workgroups"), "{err}");
    let tiled = GpuExecutor::with_tiles(Forced::Tile(CANDIDATES[0])).unwrap();
    assert!(tiled.compile(&g, std::slice::from_ref(&shape)).is_ok());
}
