//! OpenCL executor: the FPGA path. The OpenCL C kernels in `kernels/` mirror the WGSL
//! kernels one for one, so a plan is placed and described exactly as on the GPU executor
//! (`gpu::place`, `gpu::kernels::build`: one backend-neutral launch per device node) and only
//! realised differently: every launch becomes OpenCL kernel objects with their arguments set
//! once at compile time, buffers are assigned by lifetime and reused, a run enqueues every
//! kernel on one in-order queue and waits once, and ops without a kernel run in a host tail.
//!
//! The program is built from the embedded sources when the executor starts, or loaded as a
//! precompiled binary (`clCreateProgramWithBinary`, as FPGA boards require: an `aoc` .aocx
//! or a `v++` .xclbin) from the file the server config's `opencl_binary` (`use_binary`) or
//! `WALKOUT_OPENCL_BINARY` names; `walkout models opencl-binary --out FILE` writes the
//! binary the device built from source. `WALKOUT_OPENCL_DEVICE`
//! picks a device by a substring of "platform / device" (default: the first accelerator or
//! GPU, else the first device). PoCL (Debian `pocl-opencl-icd`) runs it on the CPU here.
//! The OpenCL library is loaded when the executor starts, so a machine without one runs
//! every other executor and gets a typed error from this one.

use super::gpu::kernels::{self, Arg, Kind, Launch, Spec, Which};
use super::gpu::{from_words, place, to_words};
use super::{check_run_inputs, Executor, KernelTime, Plan, Profile, Result, RuntimeError};
use crate::graph::{optimize, Graph, Tensor, ValueId};
use opencl3::command_queue::{CommandQueue, CL_QUEUE_PROFILING_ENABLE};
use opencl3::context::Context;
use opencl3::device::{Device, CL_DEVICE_TYPE_ACCELERATOR, CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_GPU};
use opencl3::kernel::Kernel;
use opencl3::memory::{Buffer, ClMem, CL_MEM_COPY_HOST_PTR, CL_MEM_READ_ONLY, CL_MEM_READ_WRITE};
use opencl3::program::Program;
use opencl3::types::{cl_mem, CL_BLOCKING};
use std::sync::{Arc, OnceLock};

pub(crate) fn cl_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Backend { backend: "opencl", msg: e.to_string() }
}

/// The kernel sources, `common.cl` first, built as one program.
pub const SOURCES: [(&str, &str); 10] = [
    ("common.cl", include_str!("../../../kernels/common.cl")),
    ("elementwise.cl", include_str!("../../../kernels/elementwise.cl")),
    ("conv.cl", include_str!("../../../kernels/conv.cl")),
    ("matmul.cl", include_str!("../../../kernels/matmul.cl")),
    ("spatial.cl", include_str!("../../../kernels/spatial.cl")),
    ("reduce.cl", include_str!("../../../kernels/reduce.cl")),
    ("copy.cl", include_str!("../../../kernels/copy.cl")),
    ("index.cl", include_str!("../../../kernels/index.cl")),
    ("pad.cl", include_str!("../../../kernels/pad.cl")),
    ("preprocess.cl", include_str!("../../../kernels/preprocess.cl")),
];

/// Build options: OpenCL C 1.2, the version FPGA SDKs compile.
pub const BUILD_OPTIONS: &str = "-cl-std=CL1.2";

/// The program source as it is built.
pub fn program_source() -> String {
    SOURCES.iter().map(|(f, s)| format!("// ---- {f}\n{s}\n")).collect()
}

/// Platform, device, context, queue and the built program, created once per process.
pub struct ClContext {
    pub description: String,
    context: Context,
    queue: CommandQueue,
    program: Program,
    /// Kernel names the program holds.
    names: Vec<String>,
}

impl std::fmt::Debug for ClContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClContext({})", self.description)
    }
}

// OpenCL objects are thread-safe by the specification (except kernel argument setting, which
// a plan does only at compile time on kernels it owns).
unsafe impl Send for ClContext {}
unsafe impl Sync for ClContext {}

static CONTEXT: OnceLock<std::result::Result<Arc<ClContext>, String>> = OnceLock::new();
static BINARY: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Loads the program from this precompiled binary instead of building the sources (a server
/// config's `opencl_binary`). It must be called before the first OpenCL executor starts;
/// later, or a second different path, is an error.
pub fn use_binary(path: &std::path::Path) -> Result<()> {
    if CONTEXT.get().is_some() && BINARY.get().map(|p| p.as_path()) != Some(path) {
        return Err(cl_err("the OpenCL program is already built; opencl_binary must be set before the first model loads"));
    }
    let p = BINARY.get_or_init(|| path.to_path_buf());
    if p != path {
        return Err(cl_err(format!("the OpenCL binary is already {}", p.display())));
    }
    Ok(())
}

impl ClContext {
    pub fn get() -> Result<Arc<ClContext>> {
        CONTEXT.get_or_init(|| ClContext::create().map(Arc::new)).clone().map_err(cl_err)
    }

    fn create() -> std::result::Result<ClContext, String> {
        let platforms = opencl3::platform::get_platforms()
            .map_err(|e| format!("no OpenCL platform ({e}); on Debian install pocl-opencl-icd (scripts/setup does)"))?;
        let want = std::env::var("WALKOUT_OPENCL_DEVICE").ok();
        let mut found: Vec<(u8, String, Device)> = Vec::new();
        for p in &platforms {
            let pname = p.name().unwrap_or_default();
            for id in p.get_devices(CL_DEVICE_TYPE_ALL).unwrap_or_default() {
                let d = Device::new(id);
                let label = format!("{pname} / {}", d.name().unwrap_or_default());
                let ty = d.dev_type().unwrap_or(0);
                let rank = if ty & (CL_DEVICE_TYPE_ACCELERATOR | CL_DEVICE_TYPE_GPU) != 0 { 0 } else { 1 };
                found.push((rank, label, d));
            }
        }
        found.sort_by_key(|f| f.0);
        let (_, label, device) = match &want {
            Some(w) => found.into_iter().find(|f| f.1.contains(w.as_str())).ok_or(format!("no OpenCL device matches '{w}'"))?,
            None => found.into_iter().next().ok_or("OpenCL platforms have no device")?,
        };
        let description = format!("{label} ({})", device.opencl_c_version().unwrap_or_default().trim());
        let context = Context::from_device(&device).map_err(|e| format!("{description}: context: {e}"))?;
        let queue = CommandQueue::create_default_with_properties(&context, CL_QUEUE_PROFILING_ENABLE, 0)
            .map_err(|e| format!("{description}: queue: {e}"))?;
        let binary = BINARY.get().map(|p| p.as_os_str().to_owned()).or_else(|| std::env::var_os("WALKOUT_OPENCL_BINARY"));
        let program = match binary {
            Some(path) => {
                let bin = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.to_string_lossy()))?;
                Program::create_and_build_from_binary(&context, &[&bin], "")
                    .map_err(|e| format!("{description}: program binary {}: {e}", path.to_string_lossy()))?
            }
            None => Program::create_and_build_from_source(&context, &program_source(), BUILD_OPTIONS)
                .map_err(|log| format!("{description}: building kernels/*.cl: {log}"))?,
        };
        let names = program.get_kernel_names().unwrap_or_default().split(';').map(|s| s.trim().to_string()).collect();
        tracing::info!("opencl: {description}");
        Ok(ClContext { description, context, queue, program, names })
    }

    fn has(&self, which: Which) -> bool {
        self.has_name(which.entry())
    }

    fn has_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The program's binaries for its device (`clGetProgramInfo(CL_PROGRAM_BINARIES)`), to be
    /// loaded later with `WALKOUT_OPENCL_BINARY`.
    pub fn binary(&self) -> Result<Vec<u8>> {
        self.program.get_binaries().map_err(cl_err)?.into_iter().next().ok_or_else(|| cl_err("the program has no binary"))
    }
}

/// The kernel families this program has all the kernels of.
fn available(ctx: &ClContext, spec: Spec) -> bool {
    let need: &[Which] = match spec {
        Spec::Binary => &[Which::BinaryF32, Which::BinaryI32],
        Spec::Unary => &[Which::UnaryF32],
        Spec::Cast => &[Which::Cast],
        Spec::Conv => &[Which::ConvGemm, Which::Depthwise],
        Spec::ConvTranspose => &[Which::ConvTranspose],
        Spec::Pool | Spec::Resize => &[Which::Pool, Which::Resize],
        Spec::MatMul => &[Which::MatMul, Which::MatMulV4],
        Spec::Reduce => &[Which::Reduce, Which::Softmax],
        Spec::Copy => &[Which::Copy],
        Spec::Index => &[Which::TopK, Which::GatherNd, Which::ArgMax, Which::Select, Which::AddN],
        Spec::Misc => &[Which::NotBool, Which::ChannelAffine, Which::Pad, Which::GatherAxis],
        Spec::Half => &[Which::BinaryHalf, Which::UnaryHalf, Which::CastToHalf, Which::CastFromHalf],
    };
    need.iter().all(|&w| ctx.has(w))
}

/// The OpenCL executor.
#[derive(Debug)]
pub struct OpenClExecutor {
    ctx: Arc<ClContext>,
}

impl OpenClExecutor {
    pub fn new() -> Result<Self> {
        Ok(OpenClExecutor { ctx: ClContext::get()? })
    }
    pub fn context(&self) -> &Arc<ClContext> {
        &self.ctx
    }
}

impl Executor for OpenClExecutor {
    fn name(&self) -> &'static str {
        "opencl"
    }
    fn adapter(&self) -> String {
        self.ctx.description.clone()
    }
    fn compile(&self, graph: &Graph, input_shapes: &[Vec<usize>]) -> Result<Box<dyn Plan>> {
        Ok(Box::new(ClPlan::new(self.ctx.clone(), graph, input_shapes)?))
    }
}

/// One enqueued kernel: its object (arguments set), global and local sizes.
struct ClKernel {
    kernel: Kernel,
    global: [usize; 3],
    local: [usize; 3],
}

struct ClLaunch {
    node: usize,
    name: &'static str,
    kernels: Vec<ClKernel>,
}

/// Work-group shape of a kernel (its `reqd_work_group_size`).
fn local_size(which: Which) -> [usize; 3] {
    match which {
        Which::ConvGemm | Which::MatMul | Which::MatMulV4 => [16, 16, 1],
        Which::TopK | Which::ArgMax => [64, 1, 1],
        _ => [256, 1, 1],
    }
}

pub struct ClPlan {
    ctx: Arc<ClContext>,
    graph: Graph,
    shapes: Vec<Vec<usize>>,
    /// Which nodes run on the host.
    on_host: Vec<bool>,
    launches: Vec<ClLaunch>,
    buf_of: Vec<Option<usize>>,
    buffers: Vec<Buffer<u32>>,
    /// Parameter blocks and carried words, alive as long as the kernels that read them.
    _aux: Vec<Buffer<u8>>,
    need_host: Vec<bool>,
    pub device_nodes: usize,
    pub host_nodes: usize,
}

impl std::fmt::Debug for ClPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClPlan({} device nodes, {} host nodes)", self.device_nodes, self.host_nodes)
    }
}

// See `ClContext`: the plan's kernels are only given arguments while it is built.
unsafe impl Send for ClPlan {}

/// Writes a tensor's words into a device buffer (blocking).
fn upload(queue: &CommandQueue, buf: &mut Buffer<u32>, t: &Tensor, name: &str) -> Result<()> {
    let words = to_words(t).ok_or_else(|| cl_err(format!("value '{name}' of dtype {} cannot live on the device", t.dtype())))?;
    if words.is_empty() {
        return Ok(());
    }
    // SAFETY: a blocking write from a slice that outlives the call
    unsafe { queue.enqueue_write_buffer(buf, CL_BLOCKING, 0, &words, &[]) }.map(|_| ()).map_err(cl_err)
}

fn buffer_from(ctx: &ClContext, bytes: &[u8], read_only: bool) -> Result<Buffer<u8>> {
    let mut data = bytes.to_vec();
    if data.is_empty() {
        data.push(0);
    }
    let flags = if read_only { CL_MEM_READ_ONLY } else { CL_MEM_READ_WRITE } | CL_MEM_COPY_HOST_PTR;
    // SAFETY: the host pointer is read during the call only (CL_MEM_COPY_HOST_PTR)
    unsafe { Buffer::<u8>::create(&ctx.context, flags, data.len(), data.as_mut_ptr().cast()) }.map_err(cl_err)
}

impl ClPlan {
    fn new(ctx: Arc<ClContext>, graph: &Graph, shapes: &[Vec<usize>]) -> Result<Self> {
        let g = optimize::specialize(graph, shapes)?;
        let place::Placement { kinds, fused, buf_of, sizes, need_host } = place::place(&g, &|s| available(&ctx, s));
        let mut buffers = Vec::with_capacity(sizes.len());
        for &size in &sizes {
            let words = (size as usize).div_ceil(4).max(1);
            // SAFETY: no host pointer
            let b = unsafe { Buffer::<u32>::create(&ctx.context, CL_MEM_READ_WRITE, words, std::ptr::null_mut()) }.map_err(cl_err)?;
            buffers.push(b);
        }
        let mut plan = ClPlan {
            on_host: kinds.iter().map(|k| matches!(k, Kind::Cpu)).collect(),
            ctx,
            shapes: shapes.to_vec(),
            launches: Vec::new(),
            buf_of,
            buffers,
            _aux: Vec::new(),
            need_host,
            device_nodes: 0,
            host_nodes: 0,
            graph: Graph::default(),
        };
        // constants used on the device are uploaded once
        for (v, t) in &g.consts {
            if let Some(b) = plan.buf_of[*v] {
                upload(&plan.ctx.queue, &mut plan.buffers[b], t, &g.values[*v].name)?;
            }
        }
        for (idx, (n, k)) in g.nodes.iter().zip(&kinds).enumerate() {
            match k {
                Kind::Cpu => plan.host_nodes += 1,
                Kind::View => {}
                Kind::Gpu(spec) => {
                    plan.device_nodes += 1;
                    let launch = kernels::build(&g, n, *spec, fused.get(&idx).copied())?;
                    let l = plan.realize(&g, idx, &launch)?;
                    plan.launches.push(l);
                }
            }
        }
        plan.graph = g;
        Ok(plan)
    }

    /// Kernel objects for a launch, arguments set: the parameter block, then the operands in
    /// binding order.
    fn realize(&mut self, g: &Graph, node: usize, launch: &Launch) -> Result<ClLaunch> {
        let local = local_size(launch.which);
        let mut out = Vec::with_capacity(launch.parts.len());
        for part in &launch.parts {
            let kernel = Kernel::create(&self.ctx.program, launch.which.entry()).map_err(cl_err)?;
            let params = buffer_from(&self.ctx, &part.params, true)?;
            let mut args: Vec<&(u32, Arg)> = part.args.iter().collect();
            args.sort_by_key(|a| a.0);
            let mut mems: Vec<cl_mem> = vec![params.get()];
            self._aux.push(params);
            for (_, a) in args {
                match a {
                    Arg::Value(v) => {
                        let b = self.buf_of[*v]
                            .ok_or_else(|| cl_err(format!("value '{}' has no device buffer (this is a bug)", g.values[*v].name)))?;
                        mems.push(self.buffers[b].get());
                    }
                    Arg::Words(w) => {
                        let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
                        let b = buffer_from(&self.ctx, &bytes, true)?;
                        mems.push(b.get());
                        self._aux.push(b);
                    }
                }
            }
            for (i, m) in mems.iter().enumerate() {
                // SAFETY: each argument is a cl_mem the plan keeps alive as long as the kernel
                unsafe { kernel.set_arg(i as u32, m) }.map_err(|e| cl_err(format!("{} argument {i}: {e}", launch.which.entry())))?;
            }
            let global = [0, 1, 2].map(|d| part.groups[d] as usize * local[d]);
            out.push(ClKernel { kernel, global, local });
        }
        Ok(ClLaunch { node, name: launch.kernel_name(), kernels: out })
    }

    fn read(&self, v: ValueId) -> Result<Tensor> {
        let info = &self.graph.values[v];
        let shape = info.shape.clone().unwrap_or_default();
        let mut words = vec![0u32; crate::graph::numel(&shape)];
        if let (Some(b), false) = (self.buf_of[v], words.is_empty()) {
            // SAFETY: a blocking read into a slice no larger than the buffer
            unsafe { self.ctx.queue.enqueue_read_buffer(&self.buffers[b], CL_BLOCKING, 0, &mut words, &[]) }.map_err(cl_err)?;
        }
        Ok(from_words(&words, info.dtype, shape))
    }

    fn enqueue(&self, k: &ClKernel) -> Result<opencl3::event::Event> {
        let dims = if k.global[2] > 1 || k.local[2] > 1 { 3 } else { 2 };
        // SAFETY: the kernel's arguments are all set and its buffers alive
        unsafe { self.ctx.queue.enqueue_nd_range_kernel(k.kernel.get(), dims, std::ptr::null(), k.global.as_ptr(), k.local.as_ptr(), &[]) }
            .map_err(cl_err)
    }

    /// "op node" of every node placed on the host.
    pub fn host_node_names(&self) -> Vec<String> {
        self.graph.nodes.iter().zip(&self.on_host).filter(|(_, h)| **h).map(|(n, _)| format!("{} {}", n.op.name(), n.name)).collect()
    }
}

impl Plan for ClPlan {
    fn input_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    fn cost(&self) -> super::PlanCost {
        let device = self.buffers.iter().map(|b| b.size().unwrap_or(0)).fold(0usize, usize::saturating_add);
        super::PlanCost { flops: self.graph.flops(), bytes: device.saturating_add(super::const_bytes(&self.graph)) }
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        check_run_inputs(&self.graph, &self.shapes, inputs)?;
        self.run_inner(Some(inputs))
    }

    fn profile(&mut self, inputs: &[Tensor]) -> Result<Option<Profile>> {
        check_run_inputs(&self.graph, &self.shapes, inputs)?;
        for (info, t) in self.graph.inputs.iter().zip(inputs) {
            if let Some(b) = self.buf_of[info.value] {
                upload(&self.ctx.queue, &mut self.buffers[b], t, &info.name)?;
            }
        }
        let mut kernels = Vec::with_capacity(self.launches.len());
        for l in &self.launches {
            let events: Vec<opencl3::event::Event> = l.kernels.iter().map(|k| self.enqueue(k)).collect::<Result<_>>()?;
            self.ctx.queue.finish().map_err(cl_err)?;
            let ns: u64 = events
                .iter()
                .map(|e| {
                    let (a, b) = (e.profiling_command_start().unwrap_or(0), e.profiling_command_end().unwrap_or(0));
                    b.saturating_sub(a)
                })
                .sum();
            let n = &self.graph.nodes[l.node];
            kernels.push(KernelTime {
                node: n.name.clone(),
                kernel: l.name.to_string(),
                ms: ns as f64 / 1e6,
                flops: super::node_flops(&self.graph, n),
                bytes: super::node_bytes(&self.graph, n),
            });
        }
        Ok(Some(Profile { method: "OpenCL profiling events".into(), kernels, untimed: self.host_node_names() }))
    }

    fn takes_frames(&self) -> bool {
        // a single image input that lives on the device and that no host step reads
        self.graph.inputs.len() == 1 && {
            let v = self.graph.inputs[0].value;
            self.buf_of[v].is_some() && !self.need_host[v] && self.ctx.has_name("letterbox")
        }
    }

    fn run_frames(&mut self, frames: &[&image::RgbImage], spec: &super::FrameSpec) -> Option<Result<super::FramesOutput>> {
        let b = match self.device_input(frames.len(), spec)? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let mut go = || {
            let (words, meta, boxes) = super::gpu::preprocess::letterbox_args(frames, spec)?;
            // the letterbox and the model on one queue, one wait (in run_inner)
            let _pending = self.preprocess("letterbox", frames.len(), spec, &words, &meta, b)?;
            Ok((self.run_inner(None)?, boxes))
        };
        Some(go())
    }

    fn run_crops(
        &mut self,
        frames: &[&image::RgbImage],
        rects: &[super::CropRect],
        spec: &super::FrameSpec,
    ) -> Option<Result<Vec<Tensor>>> {
        let b = match self.device_input(rects.len(), spec)? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let mut go = || {
            let (words, meta) = super::gpu::preprocess::crop_args(frames, rects, spec)?;
            let _pending = self.preprocess("crop", rects.len(), spec, &words, &meta, b)?;
            self.run_inner(None)
        };
        Some(go())
    }
}

impl ClPlan {
    /// The device buffer of the plan's one input when the preprocessing kernels can fill it
    /// with `n` items of `spec`; None when the plan cannot take frames.
    fn device_input(&self, n: usize, spec: &super::FrameSpec) -> Option<Result<usize>> {
        if !self.takes_frames() {
            return None;
        }
        let info = &self.graph.inputs[0];
        let b = self.buf_of[info.value]?;
        if info.dtype != spec.dtype {
            return None;
        }
        let want = match spec.layout {
            crate::graph::Layout::Nhwc => vec![n, spec.height, spec.width, 3],
            crate::graph::Layout::Nchw => vec![n, 3, spec.height, spec.width],
        };
        if self.shapes[0] != want {
            return Some(Err(RuntimeError::Input {
                name: info.name.clone(),
                msg: format!("{n} images of {spec:?} make {want:?} but the plan was compiled for {:?}", self.shapes[0]),
            }));
        }
        Some(Ok(b))
    }

    /// Enqueues a preprocessing kernel that writes `n` model inputs into buffer `out`; only
    /// the packed u8 frames and their placements cross to the device.
    /// Returns what the enqueued kernel reads, to be kept until the run's one wait.
    fn preprocess(
        &self,
        name: &str,
        n: usize,
        spec: &super::FrameSpec,
        words: &[u32],
        meta: &[u32],
        out: usize,
    ) -> Result<(ClKernel, [Buffer<u8>; 3])> {
        let p = super::gpu::preprocess::params(n, spec);
        let params = buffer_from(&self.ctx, bytemuck::bytes_of(&p), true)?;
        let pix = buffer_from(&self.ctx, bytemuck::cast_slice(words), true)?;
        let mb = buffer_from(&self.ctx, bytemuck::cast_slice(meta), true)?;
        let kernel = Kernel::create(&self.ctx.program, name).map_err(cl_err)?;
        for (i, m) in [params.get(), pix.get(), mb.get(), self.buffers[out].get()].iter().enumerate() {
            // SAFETY: the caller keeps the buffers until the queue has been waited on
            unsafe { kernel.set_arg(i as u32, m) }.map_err(cl_err)?;
        }
        let total = n * spec.height * spec.width * 3;
        let groups = kernels::groups_1d(total);
        let k = ClKernel { kernel, global: [groups[0] as usize * 256, groups[1] as usize, 1], local: [256, 1, 1] };
        self.enqueue(&k)?;
        Ok((k, [params, pix, mb]))
    }

    /// Runs the plan; `inputs` None means the input buffer was filled on the device.
    fn run_inner(&mut self, inputs: Option<&[Tensor]>) -> Result<Vec<Tensor>> {
        let inputs = inputs.unwrap_or_default();
        let nv = self.graph.values.len();
        let mut host: Vec<Option<Tensor>> = vec![None; nv];
        for (v, t) in &self.graph.consts {
            host[*v] = Some(t.clone());
        }
        for (info, t) in self.graph.inputs.iter().zip(inputs) {
            host[info.value] = Some(t.clone());
            if let Some(b) = self.buf_of[info.value] {
                upload(&self.ctx.queue, &mut self.buffers[b], t, &info.name)?;
            }
        }
        // the device prefix: every kernel on one in-order queue, one wait
        for l in &self.launches {
            for k in &l.kernels {
                self.enqueue(k)?;
            }
        }
        self.ctx.queue.finish().map_err(cl_err)?;
        for (v, slot) in host.iter_mut().enumerate() {
            if self.need_host[v] && slot.is_none() && self.buf_of[v].is_some() {
                *slot = Some(self.read(v)?);
            }
        }
        place::host_tail(&self.graph, &self.on_host, &mut host, cl_err)
    }
}
