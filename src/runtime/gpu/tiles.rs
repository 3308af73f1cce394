//! Tuned kernels for the wgpu executor. Mainly GEMM tiles (`shaders/gemm.wgsl`): convolution
//! as implicit GEMM and batched MatMul with a tile shape chosen per adapter and shape class,
//! vec4 loads of both operands where the layout allows, and double-buffered workgroup memory.
//! Also the f16 cooperative-matrix GEMM (`shaders/gemm_coop.wgsl`, `WALKOUT_GPU_TILES=coop`
//! where the device has it) and the vec4 NHWC depthwise (`shaders/depthwise.wgsl`).
//!
//! The backend-neutral launches (`kernels::build`) stay the portable kernels, which the
//! OpenCL executor runs; the GPU plan upgrades ConvGemm, MatMul and depthwise launches here.
//! Which tile a GEMM gets:
//! - `WALKOUT_GPU_TILES=portable` keeps the portable kernels; `WALKOUT_GPU_TILES=BMxBN` or
//!   `BMxBNkBK` (one of [`CANDIDATES`]) forces a tile everywhere it fits (tests, benches);
//! - otherwise the adapter's tuned table, filled by a start-up autotune when
//!   `WALKOUT_GPU_AUTOTUNE=1` (each candidate timed on the node's own buffers, the best kept
//!   per shape class and cached in `~/.cache/walkout/gpu-tiles/<adapter>.json`);
//! - otherwise [`default_tile`], a small table by shape class.
//!
//! Every f32 tile, and the depthwise kernel, sums in the portable kernels' order, so results
//! differ only by the compiler's contraction of multiply-adds; the cooperative-matrix kernels
//! round operands to f16.
//!
//! Each of these compiles on f32 or on f16 storage (a plan at precision f16: `gpu::half`),
//! keyed by the storage as well; the fused depthwise + pointwise kernel of `gpu::fuse` is one
//! more family of the same GEMM (`Family::DwPw`).

use super::kernels::{Arg, ConvP, Dispatch, Launch, MmP, Which};
use super::{gpu_err, GpuContext};
use crate::runtime::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A tile shape: a workgroup of `tx` x `ty` threads, each holding an `rm` x `rn` register
/// block, stepping `bk` along K.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileConfig {
    pub tx: u32,
    pub ty: u32,
    pub rm: u32,
    pub rn: u32,
    pub bk: u32,
}

impl TileConfig {
    const fn new(tx: u32, ty: u32, rm: u32, rn: u32, bk: u32) -> TileConfig {
        TileConfig { tx, ty, rm, rn, bk }
    }
    pub fn bm(&self) -> u32 {
        self.ty * self.rm
    }
    pub fn bn(&self) -> u32 {
        self.tx * self.rn
    }
    /// Workgroup memory of both stages of A and B.
    pub fn smem_bytes(&self) -> u32 {
        2 * self.bk * (self.bm() + self.bn()) * 4
    }
    /// "BMxBNkBK".
    pub fn name(&self) -> String {
        format!("{}x{}k{}", self.bm(), self.bn(), self.bk)
    }
}

/// The tiles the executor compiles; every one uses 256 threads.
pub const CANDIDATES: [TileConfig; 6] = [
    TileConfig::new(16, 16, 4, 4, 16), // 64x64
    TileConfig::new(16, 16, 8, 4, 16), // 128x64
    TileConfig::new(16, 16, 4, 8, 16), // 64x128
    TileConfig::new(16, 16, 8, 8, 8),  // 128x128, shallow
    TileConfig::new(16, 16, 8, 8, 16), // 128x128 (32 KiB of workgroup memory)
    TileConfig::new(8, 32, 4, 4, 16),  // 128x32, for narrow layers
];

/// Which tuned kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Conv,
    MatMul,
    /// A depthwise convolution fused into the 1x1 convolution after it (`gpu::fuse`).
    DwPw,
}

impl Family {
    pub(crate) fn entry(self) -> &'static str {
        match self {
            Family::Conv => "conv_tiled",
            Family::MatMul => "matmul_tiled",
            Family::DwPw => "dwpw_tiled",
        }
    }
    fn coop_entry(self) -> &'static str {
        match self {
            // the fused pair has no cooperative-matrix kernel (`gpu::fuse` leaves it unfused)
            Family::Conv | Family::DwPw => "conv_coop",
            Family::MatMul => "matmul_coop",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Family::Conv => "conv",
            Family::MatMul => "matmul",
            Family::DwPw => "dwpw",
        }
    }
}

/// One GEMM as the tuned kernels see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gemm {
    pub family: Family,
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// Groups (conv) or batch (MatMul).
    pub z: u32,
    pub a_vec: bool,
    pub b_vec: bool,
    /// On f16 storage (precision f16).
    pub half: bool,
}

impl Gemm {
    /// The shape class a tuned choice is cached under: the family, the vector loads, the
    /// power-of-two bucket of M, N and K, and the storage (f16 classes end in ":f16").
    pub fn class(&self) -> String {
        let b = |x: u32| 32 - x.max(1).leading_zeros();
        let f16 = if self.half { ":f16" } else { "" };
        format!("{}:{}{}:m{}:n{}:k{}{f16}", self.family.key(), self.a_vec as u8, self.b_vec as u8, b(self.m), b(self.n), b(self.k))
    }
    /// Workgroups for a tile, numbered linearly and folded into 2-D.
    pub fn groups(&self, t: &TileConfig) -> [u32; 3] {
        let total = (self.n.div_ceil(t.bn()) as u64) * (self.m.div_ceil(t.bm()) as u64) * self.z.max(1) as u64;
        let x = total.clamp(1, 65_535);
        [x as u32, total.div_ceil(x) as u32, 1]
    }
}

/// The built-in table: a tile by shape class, for adapters nobody has tuned.
pub fn default_tile(g: &Gemm, max_smem: u32) -> TileConfig {
    let pick = |bm: u32, bn: u32, bk: u32| {
        CANDIDATES.iter().copied().find(|c| c.bm() == bm && c.bn() == bn && c.bk == bk && c.smem_bytes() <= max_smem)
    };
    // enough tiles to fill the machine, else smaller tiles
    let enough = |t: &TileConfig| (g.m.div_ceil(t.bm()) as u64) * (g.n.div_ceil(t.bn()) as u64) * g.z.max(1) as u64 >= 64;
    let wide = if g.m >= 8192 && g.n >= 128 { pick(128, 128, 16).or_else(|| pick(128, 128, 8)).filter(enough) } else { None };
    let narrow = if g.n <= 32 && g.m >= 4096 { pick(128, 32, 16) } else { None };
    let tall = if g.m >= 4096 { pick(128, 64, 16).filter(enough) } else { None };
    narrow.or(wide).or(tall).unwrap_or(CANDIDATES[0])
}

/// What `WALKOUT_GPU_TILES` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forced {
    Portable,
    Tile(TileConfig),
    /// The f16 cooperative-matrix kernels (`gemm_coop.wgsl`) where the device has them, else
    /// the table.
    Coop,
}

/// Parses `WALKOUT_GPU_TILES`: "portable", "BMxBN" (the first candidate of that size) or
/// "BMxBNkBK".
pub fn parse_forced(s: &str) -> std::result::Result<Forced, String> {
    let s = s.trim();
    match s {
        "portable" => return Ok(Forced::Portable),
        "coop" => return Ok(Forced::Coop),
        _ => {}
    }
    CANDIDATES.iter().find(|c| c.name() == s || format!("{}x{}", c.bm(), c.bn()) == s).map(|c| Forced::Tile(*c)).ok_or_else(|| {
        let names: Vec<String> = CANDIDATES.iter().map(|c| c.name()).collect();
        format!("WALKOUT_GPU_TILES={s}: expected portable, coop or one of {}", names.join(", "))
    })
}

/// A clear error for a `WALKOUT_GPU_TILES` that names no tile.
pub(crate) fn check_env() -> Result<()> {
    forced_env().map(|_| ())
}

/// What a plan is forced to: its executor's choice, else `WALKOUT_GPU_TILES`.
pub(crate) fn effective(forced: Option<Forced>) -> Result<Option<Forced>> {
    match forced {
        Some(f) => Ok(Some(f)),
        None => forced_env(),
    }
}

fn forced_env() -> Result<Option<Forced>> {
    match std::env::var("WALKOUT_GPU_TILES") {
        Ok(v) if !v.trim().is_empty() => parse_forced(&v).map(Some).map_err(gpu_err),
        _ => Ok(None),
    }
}

/// The WGSL of one specialisation: `gemm.wgsl` with its TILE block rewritten, on f32 or f16
/// storage.
pub fn source(t: &TileConfig, a_vec: bool, b_vec: bool, half: bool) -> String {
    let full = super::kernels::shader_source_as("gemm.wgsl", half).unwrap_or_default();
    let (Some(s), Some(e)) = (full.find("// TILE begin"), full.find("// TILE end")) else {
        return full;
    };
    let consts = format!(
        "// TILE begin\nconst TX: u32 = {}u;\nconst TY: u32 = {}u;\nconst RM: u32 = {}u;\nconst RN: u32 = {}u;\nconst BK: u32 = {}u;\nconst A_VEC: bool = {a_vec};\nconst B_VEC: bool = {b_vec};\n",
        t.tx, t.ty, t.rm, t.rn, t.bk
    );
    format!("{}{}{}", &full[..s], consts, &full[e..])
}

/// A compiled specialisation: its pipeline and bind group layout.
#[derive(Debug)]
pub(crate) struct Tuned {
    pub pipe: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

type Key = (Family, TileConfig, bool, bool, bool);

/// The specialisations compiled so far and the tuned table, per context.
#[derive(Debug, Default)]
pub(crate) struct TileCache {
    pipes: Mutex<HashMap<Key, Arc<Tuned>>>,
    /// shape class -> tile, from the autotune (loaded from and saved to the cache file).
    tuned: Mutex<HashMap<String, TileConfig>>,
    loaded: std::sync::OnceLock<()>,
    /// The cooperative-matrix kernels (`gemm_coop.wgsl`) on f32 or f16 storage, compiled on
    /// first use.
    coop: Mutex<HashMap<(Family, bool), Arc<Tuned>>>,
    /// The vec4 depthwise kernel (`depthwise.wgsl`) on f32 and on f16 storage, compiled on
    /// first use.
    depthwise: [std::sync::OnceLock<std::result::Result<Arc<Tuned>, String>>; 2],
}

fn layout_entries(f: Family) -> Vec<wgpu::BindGroupLayoutEntry> {
    let (uniform, rw, ro): (u32, u32, &[u32]) = match f {
        Family::Conv => (0, 5, &[1, 2, 3, 4, 6, 7]),
        Family::MatMul => (8, 11, &[9, 10, 12, 13]),
        Family::DwPw => (0, 5, &[1, 2, 3, 4, 6, 7, 14, 15, 16]),
    };
    let entry = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    };
    let mut v = vec![entry(uniform, wgpu::BufferBindingType::Uniform), entry(rw, wgpu::BufferBindingType::Storage { read_only: false })];
    v.extend(ro.iter().map(|&b| entry(b, wgpu::BufferBindingType::Storage { read_only: true })));
    v
}

/// A pipeline of `entry` with the family's explicit layout (every binding of gemm.wgsl, used
/// or not).
fn with_layout(device: &wgpu::Device, f: Family, entry: &str, src: &str) -> Result<Arc<Tuned>> {
    pipeline(device, Some(f), entry, entry, src).map_err(gpu_err)
}

/// Whether the device runs the f16 cooperative-matrix kernels (the context requests the
/// feature only where the adapter offers a 16x16x16 f16 -> f32 configuration).
pub fn coop_offered(ctx: &GpuContext) -> bool {
    ctx.device.features().contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
}

impl TileCache {
    /// A cooperative-matrix kernel, compiled on first use.
    fn coop_kernel(&self, device: &wgpu::Device, f: Family, half: bool) -> Result<Arc<Tuned>> {
        if let Some(k) = self.coop.lock().map_err(gpu_err)?.get(&(f, half)) {
            return Ok(k.clone());
        }
        let src = super::kernels::shader_source_as("gemm_coop.wgsl", half).unwrap_or_default();
        let k = with_layout(device, f, f.coop_entry(), &src)?;
        self.coop.lock().map_err(gpu_err)?.insert((f, half), k.clone());
        Ok(k)
    }

    /// The pipeline of a specialisation, compiled on first use.
    pub(crate) fn get(&self, device: &wgpu::Device, gemm: &Gemm, t: TileConfig) -> Result<Arc<Tuned>> {
        let (f, a_vec, b_vec, half) = (gemm.family, gemm.a_vec, gemm.b_vec, gemm.half);
        let key = (f, t, a_vec, b_vec, half);
        if let Some(p) = self.pipes.lock().map_err(gpu_err)?.get(&key) {
            return Ok(p.clone());
        }
        let tuned = with_layout(device, f, f.entry(), &source(&t, a_vec, b_vec, half))
            .map_err(|e| gpu_err(format!("{e} ({}, vec4 A {a_vec}, B {b_vec}, f16 {half})", t.name())))?;
        self.pipes.lock().map_err(gpu_err)?.insert(key, tuned.clone());
        Ok(tuned)
    }
}

/// The GEMM of a portable ConvGemm or MatMul launch, from its parameter block.
pub(crate) fn gemm_of(launch: &Launch) -> Option<Gemm> {
    let part = launch.parts.first()?;
    match launch.which {
        Which::ConvGemm => {
            let p: ConvP = bytemuck::try_pod_read_unaligned(&part.params).ok()?;
            Some(Gemm {
                family: Family::Conv,
                m: p.n * p.oh * p.ow,
                n: p.opg,
                k: p.kh * p.kw * p.cpg,
                z: p.groups,
                a_vec: p.isc == 1
                    && p.cpg.is_multiple_of(4)
                    && p.isx.is_multiple_of(4)
                    && p.isy.is_multiple_of(4)
                    && p.isn.is_multiple_of(4),
                b_vec: p.cout.is_multiple_of(4) && p.opg.is_multiple_of(4),
                half: launch.half,
            })
        }
        Which::MatMul | Which::MatMulV4 => {
            let p: MmP = bytemuck::try_pod_read_unaligned(&part.params).ok()?;
            Some(Gemm {
                family: Family::MatMul,
                m: p.m,
                n: p.n,
                k: p.k,
                z: p.batch,
                a_vec: p.a_cs == 1 && p.a_rs.is_multiple_of(4) && p.a_bs.is_multiple_of(4) && p.k.is_multiple_of(4),
                b_vec: p.b_cs == 1 && p.b_rs.is_multiple_of(4) && p.b_bs.is_multiple_of(4) && p.n.is_multiple_of(4),
                half: launch.half,
            })
        }
        _ => None,
    }
}

/// The tuned launch's bindings, from the portable launch's.
pub(crate) fn tuned_args(launch: &Launch) -> Vec<(u32, Arg)> {
    let Some(part) = launch.parts.first() else { return Vec::new() };
    let at = |b: u32| part.args.iter().find(|(i, _)| *i == b).map(|(_, a)| a.clone());
    let mut out = Vec::new();
    match launch.which {
        Which::ConvGemm => {
            for (i, a) in &part.args {
                out.push((*i, a.clone()));
            }
            if let Some(x) = at(1) {
                out.push((6, x));
            }
            if let Some(w) = at(2) {
                out.push((7, w));
            }
        }
        _ => {
            // MatMul binds B at 2, MatMulV4 at 4
            let (a, b, c) = (at(1), at(2).or_else(|| at(4)), at(3));
            for (i, v) in [(9, a.clone()), (12, a), (10, b.clone()), (13, b), (11, c)] {
                if let Some(v) = v {
                    out.push((i, v));
                }
            }
        }
    }
    out
}

/// The uniform binding of a family.
pub(crate) fn uniform_binding(f: Family) -> u32 {
    match f {
        Family::Conv | Family::DwPw => 0,
        Family::MatMul => 8,
    }
}

/// The tile for a GEMM on this context, or None for the portable kernel.
pub(crate) fn choose(ctx: &GpuContext, forced_here: Option<Forced>, g: &Gemm) -> Result<Option<TileConfig>> {
    let max_smem = ctx.device.limits().max_compute_workgroup_storage_size;
    match effective(forced_here)? {
        Some(Forced::Portable) => return Ok(None),
        Some(Forced::Tile(t)) => return Ok(Some(if t.smem_bytes() <= max_smem { t } else { CANDIDATES[0] })),
        Some(Forced::Coop) | None => {}
    }
    ctx.tiles.load(ctx);
    if let Some(t) = ctx.tiles.tuned.lock().map_err(gpu_err)?.get(&g.class()) {
        return Ok(Some(*t));
    }
    Ok(Some(default_tile(g, max_smem)))
}

/// Whether this process tunes tiles on its first plans (`WALKOUT_GPU_AUTOTUNE=1`).
pub(crate) fn autotune_on() -> bool {
    std::env::var("WALKOUT_GPU_AUTOTUNE").is_ok_and(|v| v.trim() == "1") && forced_env().ok().flatten().is_none()
}

/// The cache file of an adapter's tuned table.
fn cache_file(ctx: &GpuContext) -> Option<std::path::PathBuf> {
    let base = std::env::var_os("WALKOUT_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/walkout")))?;
    let name: String = format!("{}-{:?}-{}", ctx.info.name, ctx.info.backend, ctx.info.driver_info)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect();
    Some(base.join("gpu-tiles").join(format!("{name}.json")))
}

impl TileCache {
    fn load(&self, ctx: &GpuContext) {
        self.loaded.get_or_init(|| {
            let Some(path) = cache_file(ctx) else { return };
            let Ok(text) = std::fs::read_to_string(&path) else { return };
            let Ok(map) = serde_json::from_str::<HashMap<String, String>>(&text) else {
                tracing::warn!("{}: not a tile table, ignored", path.display());
                return;
            };
            if let Ok(mut t) = self.tuned.lock() {
                for (class, name) in map {
                    if let Ok(Forced::Tile(c)) = parse_forced(&name) {
                        t.insert(class, c);
                    }
                }
            }
        });
    }

    /// Records a tuned choice and rewrites the cache file.
    pub(crate) fn remember(&self, ctx: &GpuContext, class: String, t: TileConfig) {
        let snapshot: HashMap<String, String> = match self.tuned.lock() {
            Ok(mut m) => {
                m.insert(class, t);
                m.iter().map(|(k, v)| (k.clone(), v.name())).collect()
            }
            Err(_) => return,
        };
        if let Some(path) = cache_file(ctx) {
            let write = || -> std::io::Result<()> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, serde_json::to_string_pretty(&snapshot).unwrap_or_default())?;
                std::fs::rename(&tmp, &path)
            };
            if let Err(e) = write() {
                tracing::warn!("could not save the tile table {}: {e}", path.display());
            }
        }
    }

    pub(crate) fn is_tuned(&self, ctx: &GpuContext, class: &str) -> bool {
        self.load(ctx);
        self.tuned.lock().map(|m| m.contains_key(class)).unwrap_or(false)
    }
}

/// The tuned dispatch of a portable ConvGemm or MatMul launch, or None to keep the portable
/// kernel (another kernel, or `WALKOUT_GPU_TILES=portable`). With `WALKOUT_GPU_AUTOTUNE=1`,
/// a shape class met for the first time is tuned here, on the node's own buffers.
pub(crate) fn upgrade(
    ctx: &GpuContext,
    forced: Option<Forced>,
    g: &crate::graph::Graph,
    launch: &Launch,
    buf_of: &[Option<usize>],
    buffers: &[wgpu::Buffer],
) -> Result<Option<Dispatch>> {
    if launch.which == Which::Depthwise {
        return depthwise(ctx, forced, g, launch, buf_of, buffers);
    }
    let Some(gemm) = gemm_of(launch) else { return Ok(None) };
    if launch.parts.len() != 1 {
        return Ok(None);
    }
    let args = tuned_args(launch);
    let wants_coop = effective(forced)? == Some(Forced::Coop);
    if wants_coop && coop_offered(ctx) {
        let k = ctx.tiles.coop_kernel(&ctx.device, gemm.family, launch.half)?;
        let name = gemm.family.coop_entry();
        let groups = gemm.groups(&CANDIDATES[0]); // 64x64 tiles, as gemm_coop.wgsl's
        return Dispatch::realize_tuned(ctx, g, launch, (k, name), &args, uniform_binding(gemm.family), groups, (buf_of, buffers))
            .map(Some);
    }
    let make = |t: TileConfig| -> Result<Dispatch> {
        let tuned = ctx.tiles.get(&ctx.device, &gemm, t)?;
        Dispatch::realize_tuned(
            ctx,
            g,
            launch,
            (tuned, gemm.family.entry()),
            &args,
            uniform_binding(gemm.family),
            gemm.groups(&t),
            (buf_of, buffers),
        )
    };
    if forced.is_none() && autotune_on() && !ctx.tiles.is_tuned(ctx, &gemm.class()) {
        let best = autotune(ctx, &gemm, &make)?;
        ctx.tiles.remember(ctx, gemm.class(), best);
    }
    match choose(ctx, forced, &gemm)? {
        Some(t) => make(t).map(Some),
        None => Ok(None),
    }
}

/// The vec4 depthwise dispatch of a portable depthwise launch on NHWC tensors with channels
/// a multiple of 4, or None to keep the portable kernel.
fn depthwise(
    ctx: &GpuContext,
    forced: Option<Forced>,
    g: &crate::graph::Graph,
    launch: &Launch,
    buf_of: &[Option<usize>],
    buffers: &[wgpu::Buffer],
) -> Result<Option<Dispatch>> {
    let portable = effective(forced)? == Some(Forced::Portable);
    let Some(part) = launch.parts.first() else { return Ok(None) };
    let Ok(p) = bytemuck::try_pod_read_unaligned::<ConvP>(&part.params) else { return Ok(None) };
    let (n, cout, oh, ow) = (p.n, p.cout, p.oh, p.ow);
    let fits = cout % 4 == 0 && p.isc == 1 && p.osc == 1 && [p.isn, p.isy, p.isx, p.osn, p.osy, p.osx].iter().all(|s| s % 4 == 0);
    if portable || launch.parts.len() != 1 || !fits {
        return Ok(None);
    }
    let tuned = ctx.tiles.depthwise[launch.half as usize]
        .get_or_init(|| {
            let src = super::kernels::shader_source_as("depthwise.wgsl", launch.half).unwrap_or_default();
            compile(&ctx.device, "depthwise.wgsl", "depthwise_v4", &src)
        })
        .clone()
        .map_err(gpu_err)?;
    // an absent operand is one zero vec4, the smallest binding of a vec4 array
    let args: Vec<(u32, Arg)> =
        part.args.iter().map(|(i, a)| (*i, if matches!(a, Arg::Words(_)) { Arg::Words(vec![0; 4]) } else { a.clone() })).collect();
    let threads = n as usize * oh as usize * ow.div_ceil(4) as usize * (cout / 4) as usize;
    let groups = super::kernels::groups_1d(threads);
    Dispatch::realize_tuned(ctx, g, launch, (tuned, "depthwise_v4"), &args, 0, groups, (buf_of, buffers)).map(Some)
}

/// A pipeline with the auto layout, compiled in an error scope.
pub(crate) fn compile(device: &wgpu::Device, label: &str, entry: &str, src: &str) -> std::result::Result<Arc<Tuned>, String> {
    pipeline(device, None, label, entry, src)
}

/// A pipeline with a family's explicit layout or the auto layout, compiled in an error scope.
fn pipeline(device: &wgpu::Device, f: Option<Family>, label: &str, entry: &str, src: &str) -> std::result::Result<Arc<Tuned>, String> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module =
        device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(label), source: wgpu::ShaderSource::Wgsl(src.into()) });
    let explicit = f.map(|f| {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(entry), entries: &layout_entries(f) });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        (layout, pl)
    });
    let pipe = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: explicit.as_ref().map(|(_, pl)| pl),
        module: &module,
        entry_point: Some(entry),
        compilation_options: Default::default(),
        cache: None,
    });
    let layout = match explicit {
        Some((layout, _)) => layout,
        None => pipe.get_bind_group_layout(0),
    };
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(format!("compiling {entry} ({label}): {e}"));
    }
    Ok(Arc::new(Tuned { pipe, layout }))
}

/// Times every candidate that fits (one warm-up, then the median of five timed runs, each
/// its own submit) and returns the fastest.
fn autotune(ctx: &GpuContext, gemm: &Gemm, make: &dyn Fn(TileConfig) -> Result<Dispatch>) -> Result<TileConfig> {
    let max_smem = ctx.device.limits().max_compute_workgroup_storage_size;
    let mut best: Option<(f64, TileConfig)> = None;
    for t in CANDIDATES.iter().copied().filter(|t| t.smem_bytes() <= max_smem) {
        let d = make(t)?;
        let mut times = Vec::with_capacity(5);
        for rep in 0..6 {
            let t0 = std::time::Instant::now();
            let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("autotune") });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                d.record(&mut pass);
            }
            ctx.queue.submit([enc.finish()]);
            ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(gpu_err)?;
            if rep > 0 {
                times.push(t0.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let med = times[times.len() / 2];
        tracing::debug!("autotune {}: {} {:.3} ms", gemm.class(), t.name(), med * 1e3);
        if best.is_none_or(|(b, _)| med < b) {
            best = Some((med, t));
        }
    }
    tracing::info!("autotune {}: {}", gemm.class(), best.map(|b| b.1.name()).unwrap_or_default());
    Ok(best.map(|b| b.1).unwrap_or(CANDIDATES[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candidate_fits_the_default_limit_or_says_so() {
        for c in CANDIDATES {
            assert_eq!(c.tx * c.ty, 256, "{}", c.name());
            assert!(c.rm % 4 == 0 && c.rn % 4 == 0 && c.bk % 4 == 0, "{}", c.name());
            assert!(c.smem_bytes() <= 32 * 1024, "{}", c.name());
            assert_eq!(parse_forced(&c.name()), Ok(Forced::Tile(c)));
        }
        assert_eq!(parse_forced("portable"), Ok(Forced::Portable));
        assert!(parse_forced("65x64").is_err());
    }

    #[test]
    fn folded_groups_cover_every_tile_without_passing_the_limit() {
        let g = Gemm { family: Family::Conv, m: 256 * 128 * 128, n: 24, k: 16, z: 1, a_vec: true, b_vec: true, half: false };
        for c in CANDIDATES {
            let [x, y, z] = g.groups(&c);
            let tiles = (g.m.div_ceil(c.bm()) as u64) * (g.n.div_ceil(c.bn()) as u64);
            assert!(x <= 65_535 && y <= 65_535 && z == 1);
            assert!(x as u64 * y as u64 >= tiles && (x as u64 * (y as u64 - 1)) < tiles, "{}", c.name());
        }
    }

    #[test]
    fn the_default_table_keeps_small_layers_on_small_tiles() {
        let small = Gemm { family: Family::MatMul, m: 17, n: 17, k: 64, z: 1, a_vec: true, b_vec: false, half: false };
        assert_eq!(default_tile(&small, 16384), CANDIDATES[0]);
        let big = Gemm { family: Family::Conv, m: 64 * 64 * 32, n: 256, k: 256, z: 1, a_vec: true, b_vec: true, half: false };
        assert_eq!(default_tile(&big, 32768).name(), "128x128k16");
        assert_eq!(default_tile(&big, 16384).name(), "128x128k8");
        let narrow = Gemm { n: 24, ..big };
        assert_eq!(default_tile(&narrow, 32768).name(), "128x32k16");
    }
}
