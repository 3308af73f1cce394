//! Shared test helpers: repository paths and fetched data.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fetched file; panics with the command that fetches it when missing.
pub fn fetched(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.exists(), "{} is missing: run scripts/test (it fetches models, data and TF.js references)", p.display());
    p
}

/// The Python of the cached reference virtualenv (`scripts/venv`: trackeval, motmetrics,
/// onnxruntime, tritonclient), or `$WALKOUT_PYTHON`.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("WALKOUT_PYTHON") {
        return PathBuf::from(p);
    }
    let out = std::process::Command::new(root().join("scripts/venv")).output().expect("running scripts/venv");
    assert!(out.status.success(), "scripts/venv failed: {}", String::from_utf8_lossy(&out.stderr));
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(p.exists(), "{} is missing: run scripts/test (scripts/venv installs the reference tools)", p.display());
    p
}

/// Copies a folder (a model version) into `dst`: test repositories hold real files, since
/// the repository refuses symlinks that lead out of it.
pub fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

/// A private repository in the temp folder (`walkout-{tag}-{pid}`) holding a copy of
/// MoveNet MultiPose's config and version 1.
pub fn movenet_repo(tag: &str) -> PathBuf {
    movenet_json();
    let model = "movenet-multipose";
    let dir = std::env::temp_dir().join(format!("walkout-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let m = dir.join(model);
    std::fs::create_dir_all(&m).unwrap();
    std::fs::copy(root().join("models").join(model).join("config.toml"), m.join("config.toml")).unwrap();
    copy_dir(&root().join("models").join(model).join("1"), &m.join("1"));
    dir
}

pub fn movenet_json() -> PathBuf {
    fetched("models/movenet-multipose/1/model.json")
}

/// Hand-annotated boxes [x0, y0, x1, y1] of the three pedestrians in `bus.jpg`.
pub const BUS_PEOPLE: [[f32; 4]; 3] = [[50.0, 399.0, 244.0, 903.0], [223.0, 407.0, 344.0, 857.0], [669.0, 392.0, 809.0, 877.0]];

/// Intersection over union of two [x0, y0, x1, y1] boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// Runs one test body on every executor, in the spirit of candle's `test_device!`:
/// `test_executors!(name, body)` makes `name::cpu` (and its forced vector paths), `name::gpu`
/// (any wgpu adapter, Mesa's lavapipe included) and `name::opencl` (any OpenCL device, PoCL
/// included), each calling `body(&dyn Executor)`. A new executor adds one line here
/// and inherits every test written this way.
#[macro_export]
macro_rules! test_executors {
    ($name:ident, $body:path) => {
        mod $name {
            #[test]
            fn cpu() {
                $body(&walkout::runtime::cpu::CpuExecutor::new());
            }
            // every vector path of the CPU executor, forced (this machine runs all three)
            #[test]
            fn cpu_avx512() {
                $crate::common::cpu_path(walkout::runtime::cpu::Isa::Avx512, |e| $body(e));
            }
            #[test]
            fn cpu_avx2() {
                $crate::common::cpu_path(walkout::runtime::cpu::Isa::Avx2, |e| $body(e));
            }
            #[test]
            fn cpu_portable() {
                $crate::common::cpu_path(walkout::runtime::cpu::Isa::Portable, |e| $body(e));
            }
            #[test]
            fn gpu() {
                $body(&walkout::runtime::gpu::GpuExecutor::new().expect("a wgpu adapter (scripts/setup installs lavapipe)"));
            }
            // the OpenCL C kernels of kernels/ (PoCL on the CPU here)
            #[test]
            fn opencl() {
                $body(&walkout::runtime::opencl::OpenClExecutor::new().expect("an OpenCL device (scripts/setup installs PoCL)"));
            }
        }
    };
}

/// Runs `body` on the CPU executor forced onto `isa`; a CPU without it says so and skips
/// (the CI machine, like the development one, runs all three paths).
#[allow(dead_code)]
pub fn cpu_path(isa: walkout::runtime::cpu::Isa, body: impl FnOnce(&walkout::runtime::cpu::CpuExecutor)) {
    match walkout::runtime::cpu::CpuExecutor::with_isa(isa) {
        Ok(e) => body(&e),
        Err(e) => println!("skipped: {e}"),
    }
}

/// A plain HTTP/1.1 GET: (status code, whole response).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out)
}

/// The server on a device executor: frames of different sizes go through the device's
/// letterbox kernel into one batch; the pedestrians of bus.jpg are found in a mixed batch.
#[allow(dead_code)]
pub fn served_batch_of_mixed_sizes(device: walkout::runtime::Device) {
    served_batch_of_mixed_sizes_from(device, root().join("models"), "f32");
}

/// `served_batch_of_mixed_sizes` with the model from another repository (its config
/// changed, say), running at `precision` (as the adapter metric says).
#[allow(dead_code)]
pub fn served_batch_of_mixed_sizes_from(device: walkout::runtime::Device, repository: PathBuf, precision: &str) {
    use walkout::serve::config::{BatchingParams, ModelServeConfig, ServerConfig};
    movenet_json();
    let config = ServerConfig {
        grpc_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        model_repository: repository,
        device,
        models: vec![ModelServeConfig {
            name: "movenet-multipose".into(),
            device: None,
            input_size: None,
            batching: Some(BatchingParams {
                max_batch_size: 2,
                max_queue_delay_us: 2_000_000,
                preferred_batch_sizes: vec![2],
                max_queue_size: 4,
            }),
        }],
        ..ServerConfig::default()
    };
    let r = walkout::app::Running::start(config).unwrap_or_else(|e| panic!("server on {device}: {e}"));
    let bus = walkout::vision::image_io::load(&fetched("data/bus.jpg")).expect("bus");
    let zidane = walkout::vision::image_io::load(&fetched("data/zidane.jpg")).expect("zidane");
    let s = r.server.clone();
    let (a, b) = r.runtime().block_on(async { tokio::join!(s.analyze("", bus), s.analyze("", zidane)) });
    let (a, b) = (a.expect("bus result"), b.expect("zidane result"));
    assert_eq!((a.batch_size, b.batch_size), (2, 2), "both images ran as one batch");
    assert_eq!((b.width, b.height), (1280, 720));
    // the two main pedestrians (the device letterbox does not antialias; see the #4 note)
    for gt in &BUS_PEOPLE[..2] {
        let best = a.persons().iter().map(|p| iou(&p.bbox, gt)).fold(0.0, f32::max);
        assert!(best >= 0.5, "pedestrian {gt:?} not found on {device} (best IoU {best:.2})");
    }
    assert!(b.persons().iter().filter(|p| p.score > 0.3).count() >= 2, "zidane.jpg: {} persons", b.persons().len());
    let metrics = r.server.metrics.render();
    assert!(metrics.contains("walkout_adapter_info{adapter="));
    assert!(metrics.contains(&format!("precision=\"{precision}\"")), "the model runs at {precision}: {metrics}");
    r.shutdown().expect("shutdown");
}

/// Small graphs built node by node, for the executor tests.
#[allow(dead_code)]
pub mod graphs {
    use walkout::graph::*;

    pub fn rand(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 1000) as f32 / 1000.0 - 0.5).collect()
    }

    /// Builds a graph node by node.
    pub struct B(pub Graph);

    impl B {
        pub fn input(&mut self, name: &str, shape: &[usize]) -> ValueId {
            let v = self.0.add_value(name, DType::F32);
            self.0.inputs.push(InputInfo {
                value: v,
                name: name.into(),
                dtype: DType::F32,
                dims: shape.iter().map(|&d| Dim::Fixed(d)).collect(),
            });
            v
        }
        pub fn konst(&mut self, t: Tensor) -> ValueId {
            let n = self.0.values.len();
            self.0.add_const(format!("c{n}"), t)
        }
        pub fn node(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> ValueId {
            let y = self.0.add_value(name, DType::F32);
            self.0.nodes.push(Node { name: name.into(), op, inputs: inputs.to_vec(), outputs: vec![y] });
            y
        }
    }

    pub fn conv(act: Activation, groups: usize, stride: usize) -> Op {
        Op::Conv2d(ConvAttrs {
            layout: Layout::Nhwc,
            strides: [stride; 2],
            dilations: [1; 2],
            padding: Padding::SameUpper,
            groups,
            has_bias: true,
            act,
            residual: None,
        })
    }
}
