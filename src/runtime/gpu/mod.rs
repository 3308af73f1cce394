//! GPU executor on WGSL compute shaders through wgpu (Vulkan, Metal, DX12; Mesa's lavapipe
//! where no GPU exists). A graph is compiled once per input shape into a plan: pipelines are
//! created once per kernel family, every GPU node gets its uniform buffer and bind group at
//! compile time, and intermediate buffers are assigned by lifetime and reused. Ops without a
//! GPU kernel run on the CPU reference kernels where the plan says so, with the transfers
//! counted in the timings.

pub(crate) mod fuse;
pub(crate) mod half;
pub mod kernels;
pub mod peak;
pub(crate) mod place;
pub mod preprocess;
pub mod subgroups;
pub mod tiles;

use super::{check_run_inputs, Executor, KernelTime, Plan, Profile, Result, RuntimeError};
use crate::graph::{optimize, DType, Graph, Tensor, TensorData, ValueId};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub(crate) fn gpu_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Backend { backend: "gpu", msg: e.to_string() }
}

/// Device, queue and the compiled pipelines, created once per process.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub(crate) pipes: kernels::Pipelines,
    /// Tuned GEMM specialisations and the adapter's tile table.
    pub(crate) tiles: tiles::TileCache,
    /// The subgroup row kernels, where the device has SUBGROUP.
    pub(crate) rows: Option<subgroups::RowKernels>,
    /// What the adapter offers (not all of it is requested).
    pub offered: wgpu::Features,
    /// The adapter's cooperative-matrix configurations, "MxNxK A/B -> C".
    pub coop: Vec<String>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuContext({})", describe(&self.info))
    }
}

/// "name (backend, device type)".
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

static CONTEXT: OnceLock<std::result::Result<Arc<GpuContext>, String>> = OnceLock::new();

impl GpuContext {
    /// The shared context, created on first use.
    pub fn get() -> Result<Arc<GpuContext>> {
        CONTEXT.get_or_init(|| GpuContext::create().map(Arc::new)).clone().map_err(gpu_err)
    }

    fn create() -> std::result::Result<GpuContext, String> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| format!("no GPU adapter ({e}); on Debian install mesa-vulkan-drivers for lavapipe"))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let offered = adapter.features();
        let coop: Vec<String> = adapter
            .cooperative_matrix_properties()
            .iter()
            .map(|c| format!("{}x{}x{} {:?} -> {:?}", c.m_size, c.n_size, c.k_size, c.ab_type, c.cr_type))
            .collect();
        let coop_f16 = offered.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16)
            && adapter.cooperative_matrix_properties().iter().any(|c| {
                (c.m_size, c.n_size, c.k_size) == (16, 16, 16)
                    && matches!(c.ab_type, wgpu::CooperativeScalarType::F16)
                    && matches!(c.cr_type, wgpu::CooperativeScalarType::F32)
            });
        let coop_features =
            if coop_f16 { wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("walkout"),
            // timestamps for profiles, subgroups for the row reductions, and f16 cooperative
            // matrices for the tensor-core GEMM, where offered
            // and f16 storage for plans at precision f16
            required_features: offered & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP | wgpu::Features::SHADER_F16)
                | coop_features,
            required_limits: wgpu::Limits {
                // the fused depthwise + pointwise kernel binds 10 (`fuse`)
                max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_buffer_size: limits.max_buffer_size,
                // the larger GEMM tiles want more than WebGPU's default 16 KiB
                max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
                ..wgpu::Limits::default()
            },
            experimental_features: if coop_f16 {
                // SAFETY: the experimental cooperative-matrix feature is requested only where the
                // adapter offers a 16x16x16 f16 -> f32 configuration, and only gemm_coop.wgsl's
                // pipelines (naga-validated, opt-in through WALKOUT_GPU_TILES=coop) use it.
                unsafe { wgpu::ExperimentalFeatures::enabled() }
            } else {
                wgpu::ExperimentalFeatures::disabled()
            },
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| format!("request_device on {}: {e}", describe(&info)))?;
        // Errors become values, never panics: pipelines are checked in an error scope and
        // anything uncaptured later is logged.
        device.on_uncaptured_error(Arc::new(|e| tracing::error!("wgpu: {e}")));
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipes = kernels::Pipelines::new(&device);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(format!("compiling the WGSL kernels on {}: {e}", describe(&info)));
        }
        let rows = if device.features().contains(wgpu::Features::SUBGROUP) {
            match subgroups::RowKernels::new(&device) {
                Ok(k) => Some(k),
                Err(e) => {
                    tracing::warn!("subgroup kernels unavailable on {}: {e}", describe(&info));
                    None
                }
            }
        } else {
            None
        };
        Ok(GpuContext { device, queue, info, pipes, tiles: Default::default(), rows, offered, coop })
    }

    /// What the adapter offers for the fast paths of #17: f16, subgroups, cooperative
    /// matrices, and workgroup memory.
    pub fn capabilities(&self) -> String {
        let yes = |f: wgpu::Features| if self.offered.contains(f) { "yes" } else { "no" };
        format!(
            "shader-f16 {}, subgroups {} (size {}..{}), cooperative matrix {}, workgroup memory {} KiB",
            yes(wgpu::Features::SHADER_F16),
            yes(wgpu::Features::SUBGROUP),
            self.info.subgroup_min_size,
            self.info.subgroup_max_size,
            if self.coop.is_empty() { "none".to_string() } else { self.coop.join(", ") },
            self.device.limits().max_compute_workgroup_storage_size / 1024
        )
    }

    /// True for a real GPU, false for a software adapter such as lavapipe.
    pub fn is_hardware(&self) -> bool {
        !matches!(self.info.device_type, wgpu::DeviceType::Cpu)
    }
}

/// The wgpu executor.
#[derive(Debug)]
pub struct GpuExecutor {
    ctx: Arc<GpuContext>,
    /// GEMM tiles forced for this executor's plans (else `WALKOUT_GPU_TILES`, the tuned
    /// table, the default table).
    tiles: Option<tiles::Forced>,
    /// Plans store weights and activations as f16 (`half`).
    half: bool,
    /// Plans fuse depthwise + pointwise pairs (`fuse`; default `WALKOUT_GPU_FUSE=1`).
    fuse: bool,
    /// At f16, the heads' last convolutions and what follows are f16 too (kernel benches).
    f16_heads: bool,
}

impl GpuExecutor {
    pub fn new() -> Result<Self> {
        Ok(GpuExecutor { ctx: GpuContext::get()?, tiles: None, half: false, fuse: fuse::from_env(), f16_heads: false })
    }
    /// An executor whose plans use the portable GEMM kernels or one tile everywhere it fits.
    pub fn with_tiles(tiles: tiles::Forced) -> Result<Self> {
        Ok(GpuExecutor { ctx: GpuContext::get()?, tiles: Some(tiles), half: false, fuse: fuse::from_env(), f16_heads: false })
    }
    /// This executor with its plans at a precision; f16 needs `has_f16` (plans fail to
    /// compile without it).
    pub fn with_precision(self, p: super::Precision) -> Self {
        GpuExecutor { half: p == super::Precision::F16, ..self }
    }
    /// At precision f16, every node with an f16 kernel in f16, heads and tails included (a
    /// one-node graph's node, for the kernel benches), not only the trunk.
    pub fn with_f16_heads(self, f16_heads: bool) -> Self {
        GpuExecutor { f16_heads, ..self }
    }
    /// This executor with depthwise + pointwise fusion on or off for its plans.
    pub fn with_fusion(self, fuse: bool) -> Self {
        GpuExecutor { fuse, ..self }
    }
    /// Whether the device has SHADER_F16, which precision f16 needs.
    pub fn has_f16(&self) -> bool {
        self.ctx.device.features().contains(wgpu::Features::SHADER_F16)
    }
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}

impl Executor for GpuExecutor {
    fn name(&self) -> &'static str {
        "gpu"
    }
    fn adapter(&self) -> String {
        describe(&self.ctx.info)
    }
    fn compile(&self, graph: &Graph, input_shapes: &[Vec<usize>]) -> Result<Box<dyn Plan>> {
        Ok(Box::new(GpuPlan::new(self.ctx.clone(), graph, input_shapes, self)?))
    }
    fn precision(&self) -> super::Precision {
        if self.half {
            super::Precision::F16
        } else {
            super::Precision::F32
        }
    }
}

/// Words (u32) of a tensor as the GPU stores it: f32 and i32 bits, bool as 0/1, f16 two to a
/// word (the first in the low half).
pub(crate) fn to_words(t: &Tensor) -> Option<Vec<u32>> {
    Some(match &t.data {
        TensorData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
        TensorData::F16(v) => v.chunks(2).map(|p| p[0].to_bits() as u32 | p.get(1).map_or(0, |h| (h.to_bits() as u32) << 16)).collect(),
        TensorData::I32(v) => v.iter().map(|&x| x as u32).collect(),
        TensorData::Bool(v) => v.iter().map(|&x| x as u32).collect(),
        // int64 lives on the GPU as int32 (indices and shape arithmetic fit)
        TensorData::I64(v) => v.iter().map(|&x| x as i32 as u32).collect(),
        _ => return None,
    })
}

/// The tensor of `shape` held in the first words of `w` (as `to_words` lays it out).
pub(crate) fn from_words(w: &[u32], dtype: DType, shape: Vec<usize>) -> Tensor {
    let n = crate::graph::numel(&shape);
    let words = || w.iter().take(n);
    let data = match dtype {
        DType::I32 => TensorData::I32(words().map(|&x| x as i32).collect()),
        DType::I64 => TensorData::I64(words().map(|&x| x as i32 as i64).collect()),
        DType::Bool => TensorData::Bool(words().map(|&x| x != 0).collect()),
        DType::F16 => TensorData::F16(w.iter().flat_map(|&x| [x as u16, (x >> 16) as u16]).take(n).map(::half::f16::from_bits).collect()),
        _ => TensorData::F32(words().map(|&x| f32::from_bits(x)).collect()),
    };
    Tensor::new(shape, data)
}

pub(crate) fn gpu_dtype(d: DType) -> bool {
    matches!(d, DType::F32 | DType::I32 | DType::I64 | DType::Bool)
}

/// Where each node runs and how.
#[derive(Debug)]
enum Step {
    Gpu(kernels::Dispatch),
    /// Output aliases the input buffer.
    View,
    /// Computed inside a later node's kernel (`fuse`): nothing of its own to run.
    Fused,
    Cpu,
}

#[derive(Debug)]
pub struct GpuPlan {
    ctx: Arc<GpuContext>,
    graph: Graph,
    shapes: Vec<Vec<usize>>,
    steps: Vec<Step>,
    /// Buffer of each value on the GPU, if it lives there.
    buf_of: Vec<Option<usize>>,
    buffers: Vec<wgpu::Buffer>,
    /// Staging buffer (MAP_READ) per downloaded value.
    staging: HashMap<ValueId, wgpu::Buffer>,
    /// Values needed on the host: inputs of CPU nodes and graph outputs.
    need_host: Vec<bool>,
    pub gpu_nodes: usize,
    pub cpu_nodes: usize,
    /// The letterbox kernel, created on the first `run_frames`.
    pre: Option<preprocess::GpuPreprocessor>,
}

impl GpuPlan {
    fn new(ctx: Arc<GpuContext>, graph: &Graph, shapes: &[Vec<usize>], exec: &GpuExecutor) -> Result<Self> {
        let (forced, half) = (exec.tiles, exec.half);
        tiles::check_env()?;
        let f16 = ctx.device.features().contains(wgpu::Features::SHADER_F16);
        if half && !f16 {
            return Err(gpu_err(format!("precision f16 needs SHADER_F16, which {} lacks", describe(&ctx.info))));
        }
        let avail = |s: kernels::Spec| s != kernels::Spec::Half || f16;
        let mut g = optimize::specialize(graph, shapes)?;
        if half {
            g = half::convert(&g, &place::place(&g, &avail).kinds, exec.f16_heads);
        }
        let nv = g.values.len();
        let first = place::place(&g, &avail);
        // every device node's launch, then the depthwise + pointwise pairs fused on wgpu
        let launches = g
            .nodes
            .iter()
            .zip(&first.kinds)
            .enumerate()
            .map(|(idx, (n, k))| match k {
                kernels::Kind::Gpu(spec) => kernels::build(&g, n, *spec, first.fused.get(&idx).copied()).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<Option<kernels::Launch>>>>()?;
        // a fused pair's pointwise node reads the depthwise node's input: keep it until then
        let candidates = if exec.fuse { fuse::pairs(&g, &launches, &first.need_host) } else { HashMap::new() };
        let keep: HashMap<ValueId, usize> = candidates.iter().map(|(&pw, &dw)| (g.nodes[dw].inputs[0], pw)).collect();
        let place::Placement { kinds, buf_of, sizes, need_host, .. } =
            if keep.is_empty() { first } else { place::place_keeping(&g, &avail, &keep) };
        // wgpu would only log a binding over the limit and leave the kernel unrun: refuse
        // the plan instead (an H100 binds at most 2 GiB; MoveNet at batch 256 wants 2.25)
        let limits = ctx.device.limits();
        let most = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        if let Some((b, &size)) = sizes.iter().enumerate().find(|(_, &s)| s > most) {
            let v = (0..nv).find(|&v| buf_of[v] == Some(b) && place::device_bytes(&g, v) > most).unwrap_or(0);
            return Err(gpu_err(format!(
                "'{}' needs a {size}-byte buffer, over this adapter's largest storage binding of {most} bytes (a smaller batch fits)",
                g.values[v].name
            )));
        }
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let buffers: Vec<wgpu::Buffer> = sizes
            .iter()
            .map(|&size| ctx.device.create_buffer(&wgpu::BufferDescriptor { label: None, size, usage, mapped_at_creation: false }))
            .collect();
        let size_of = |v: usize| place::device_bytes(&g, v).next_multiple_of(4);
        // constants used on the GPU are uploaded once
        for (v, t) in &g.consts {
            if let (Some(b), Some(words)) = (buf_of[*v], to_words(t)) {
                if !words.is_empty() {
                    ctx.queue.write_buffer(&buffers[b], 0, bytemuck::cast_slice(&words));
                }
            }
        }
        let mut staging = HashMap::new();
        for v in 0..nv {
            if need_host[v] && buf_of[v].is_some() && !g.consts.contains_key(&v) {
                staging.insert(
                    v,
                    ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("staging"),
                        size: size_of(v),
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }),
                );
            }
        }
        let mut pairs: HashMap<usize, kernels::Dispatch> = HashMap::new();
        let mut inside = vec![false; g.nodes.len()];
        for (pw, dw) in candidates {
            let (Some(a), Some(b)) = (&launches[dw], &launches[pw]) else { continue };
            match fuse::dispatch(&ctx, forced, &g, a, b, &buf_of, &buffers) {
                Ok(Some(d)) => {
                    pairs.insert(pw, d);
                    inside[dw] = true;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("{} + {}: left unfused: {e}", g.nodes[dw].name, g.nodes[pw].name),
            }
        }
        let mut steps = Vec::with_capacity(g.nodes.len());
        let (mut gpu_nodes, mut cpu_nodes) = (0, 0);
        for (idx, (n, launch)) in g.nodes.iter().zip(launches).enumerate() {
            steps.push(match (&kinds[idx], launch) {
                (kernels::Kind::Cpu, _) => {
                    cpu_nodes += 1;
                    Step::Cpu
                }
                (kernels::Kind::Gpu(_), Some(launch)) => {
                    gpu_nodes += 1;
                    if inside[idx] {
                        steps.push(Step::Fused);
                        continue;
                    }
                    if let Some(d) = pairs.remove(&idx) {
                        steps.push(Step::Gpu(d));
                        continue;
                    }
                    // a tuned kernel the driver refuses leaves the node on the portable one
                    let tuned = match tiles::upgrade(&ctx, forced, &g, &launch, &buf_of, &buffers)
                        .and_then(|d| d.map_or_else(|| subgroups::upgrade(&ctx, &g, &launch, &buf_of, &buffers), |d| Ok(Some(d))))
                    {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::warn!("{} ({}): the portable kernel runs: {e}", n.name, launch.kernel_name());
                            None
                        }
                    };
                    Step::Gpu(match tuned {
                        Some(d) => d,
                        None => kernels::Dispatch::realize(&ctx, &g, &launch, &buf_of, &buffers)?,
                    })
                }
                _ => Step::View,
            });
        }
        Ok(GpuPlan { ctx, graph: g, shapes: shapes.to_vec(), steps, buf_of, buffers, staging, need_host, gpu_nodes, cpu_nodes, pre: None })
    }

    /// Copies GPU values to their staging buffers, submits, waits, and reads them.
    fn download(&self, enc: wgpu::CommandEncoder, vals: &[ValueId], host: &mut [Option<Tensor>]) -> Result<()> {
        let mut enc = enc;
        for &v in vals {
            if let (Some(b), Some(st)) = (self.buf_of[v], self.staging.get(&v)) {
                enc.copy_buffer_to_buffer(&self.buffers[b], 0, st, 0, st.size());
            }
        }
        self.ctx.queue.submit([enc.finish()]);
        for &v in vals {
            if let Some(st) = self.staging.get(&v) {
                st.slice(..).map_async(wgpu::MapMode::Read, |_| {});
            }
        }
        self.ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(gpu_err)?;
        for &v in vals {
            if let Some(st) = self.staging.get(&v) {
                let info = &self.graph.values[v];
                let shape = info.shape.clone().unwrap_or_default();
                {
                    let data = st.slice(..).get_mapped_range().map_err(gpu_err)?;
                    let words: &[u32] = bytemuck::cast_slice(&data);
                    host[v] = Some(from_words(words, info.dtype, shape));
                }
                st.unmap();
            }
        }
        Ok(())
    }

    /// "op node" of every node placed on the CPU.
    pub fn cpu_node_names(&self) -> Vec<String> {
        self.graph
            .nodes
            .iter()
            .zip(&self.steps)
            .filter(|(_, s)| matches!(s, Step::Cpu))
            .map(|(n, _)| format!("{} {}", n.op.name(), n.name))
            .collect()
    }

    fn upload(&self, v: ValueId, t: &Tensor) -> Result<()> {
        if let Some(b) = self.buf_of[v] {
            let words = to_words(t)
                .ok_or_else(|| gpu_err(format!("value '{}' of dtype {} cannot live on the GPU", self.graph.values[v].name, t.dtype())))?;
            if !words.is_empty() {
                self.ctx.queue.write_buffer(&self.buffers[b], 0, bytemuck::cast_slice(&words));
            }
        }
        Ok(())
    }
}

impl Plan for GpuPlan {
    fn input_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    fn cost(&self) -> super::PlanCost {
        // device buffers and staging buffers, and the host copy of the constants
        let device = self.buffers.iter().chain(self.staging.values()).map(|b| b.size() as usize).fold(0usize, usize::saturating_add);
        let consts = super::const_bytes(&self.graph);
        super::PlanCost { flops: self.graph.flops(), bytes: device.saturating_add(consts) }
    }

    fn profile(&mut self, inputs: &[Tensor]) -> Result<Option<Profile>> {
        check_run_inputs(&self.graph, &self.shapes, inputs)?;
        for (info, t) in self.graph.inputs.iter().zip(inputs) {
            self.upload(info.value, t)?;
        }
        let gpu_steps: Vec<usize> = (0..self.steps.len()).filter(|&i| matches!(self.steps[i], Step::Gpu(_))).collect();
        let mut kernels = Vec::with_capacity(gpu_steps.len());
        let name_of = |i: usize| match &self.steps[i] {
            Step::Gpu(d) => d.kernel_name().to_string(),
            _ => String::new(),
        };
        if self.ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) && !gpu_steps.is_empty() {
            let count = 2 * gpu_steps.len() as u32;
            let qs = self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let size = count as u64 * 8;
            let resolve = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let read = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
            for (k, &i) in gpu_steps.iter().enumerate() {
                if let Step::Gpu(d) = &self.steps[i] {
                    let tw = wgpu::ComputePassTimestampWrites {
                        query_set: &qs,
                        beginning_of_pass_write_index: Some(2 * k as u32),
                        end_of_pass_write_index: Some(2 * k as u32 + 1),
                    };
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: Some(tw) });
                    d.record(&mut pass);
                }
            }
            enc.resolve_query_set(&qs, 0..count, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &read, 0, size);
            self.ctx.queue.submit([enc.finish()]);
            read.slice(..).map_async(wgpu::MapMode::Read, |_| {});
            self.ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(gpu_err)?;
            let period = self.ctx.queue.get_timestamp_period() as f64;
            {
                let data = read.slice(..).get_mapped_range().map_err(gpu_err)?;
                let ticks: &[u64] = bytemuck::cast_slice(&data);
                for (k, &i) in gpu_steps.iter().enumerate() {
                    let ns = ticks[2 * k + 1].saturating_sub(ticks[2 * k]) as f64 * period;
                    let n = &self.graph.nodes[i];
                    kernels.push(KernelTime {
                        node: n.name.clone(),
                        kernel: name_of(i),
                        ms: ns / 1e6,
                        flops: super::node_flops(&self.graph, n),
                        bytes: super::node_bytes(&self.graph, n),
                    });
                }
            }
            read.unmap();
            return Ok(Some(Profile { method: "timestamp queries".into(), kernels, untimed: self.cpu_node_names() }));
        }
        // no timestamp queries: one submit per kernel, timed with poll(Wait) inside
        for &i in &gpu_steps {
            if let Step::Gpu(d) = &self.steps[i] {
                let t0 = std::time::Instant::now();
                let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                    d.record(&mut pass);
                }
                self.ctx.queue.submit([enc.finish()]);
                self.ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(gpu_err)?;
                let n = &self.graph.nodes[i];
                kernels.push(KernelTime {
                    node: n.name.clone(),
                    kernel: name_of(i),
                    ms: t0.elapsed().as_secs_f64() * 1e3,
                    flops: super::node_flops(&self.graph, n),
                    bytes: super::node_bytes(&self.graph, n),
                });
            }
        }
        Ok(Some(Profile {
            method: "host timer around submit + poll(Wait), one kernel per submit".into(),
            kernels,
            untimed: self.cpu_node_names(),
        }))
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        check_run_inputs(&self.graph, &self.shapes, inputs)?;
        self.run_inner(Some(inputs))
    }

    fn takes_frames(&self) -> bool {
        // a single image input that lives on the GPU and that no CPU step reads
        self.graph.inputs.len() == 1 && {
            let v = self.graph.inputs[0].value;
            self.buf_of[v].is_some() && !self.need_host[v]
        }
    }

    fn run_frames(&mut self, frames: &[&image::RgbImage], spec: &super::FrameSpec) -> Option<Result<super::FramesOutput>> {
        let b = match self.device_input(frames.len(), spec)? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let pre = self.pre.as_ref()?;
        let boxes = match pre.encode_into(frames, spec, &self.buffers[b]) {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        Some(self.run_inner(None).map(|o| (o, boxes)))
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
        let pre = self.pre.as_ref()?;
        if let Err(e) = pre.crop_into(frames, rects, spec, &self.buffers[b]) {
            return Some(Err(e));
        }
        Some(self.run_inner(None))
    }
}

impl GpuPlan {
    /// The buffer of the plan's one input when it is filled on the device by the
    /// preprocessing kernels (`n` items of `spec`); None when the plan cannot take them.
    fn device_input(&mut self, n: usize, spec: &super::FrameSpec) -> Option<Result<usize>> {
        if !self.takes_frames() {
            return None;
        }
        let info = &self.graph.inputs[0];
        let b = self.buf_of[info.value]?;
        if self.need_host[info.value] || info.dtype != spec.dtype {
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
        if self.pre.is_none() {
            match preprocess::GpuPreprocessor::new(self.ctx.clone()) {
                Ok(p) => self.pre = Some(p),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(b))
    }

    /// Runs the plan; `inputs` None means the input buffers were filled on the device.
    fn run_inner(&mut self, inputs: Option<&[Tensor]>) -> Result<Vec<Tensor>> {
        let nv = self.graph.values.len();
        let mut host: Vec<Option<Tensor>> = vec![None; nv];
        for (v, t) in &self.graph.consts {
            host[*v] = Some(t.clone());
        }
        for (info, t) in self.graph.inputs.iter().zip(inputs.unwrap_or_default()) {
            host[info.value] = Some(t.clone());
            self.upload(info.value, t)?;
        }
        // GPU prefix: one encoder, one compute pass, one submit
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("walkout") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("walkout"), timestamp_writes: None });
            for step in &self.steps {
                if let Step::Gpu(d) = step {
                    d.record(&mut pass);
                }
            }
        }
        // one readback: what the CPU tail and the outputs need
        let wanted: Vec<ValueId> = (0..nv).filter(|&v| self.need_host[v] && host[v].is_none() && self.staging.contains_key(&v)).collect();
        self.download(enc, &wanted, &mut host)?;
        // CPU tail (nothing on the GPU depends on it)
        let on_host: Vec<bool> = self.steps.iter().map(|s| matches!(s, Step::Cpu)).collect();
        place::host_tail(&self.graph, &on_host, &mut host, gpu_err)
    }
}
