//! The kernel files and their pipelines: the WGSL sources with the shared preamble and the
//! storage types (f32, or f16 at precision f16), and every pipeline of [`Which`], compiled
//! once per process.

use super::{gpu_err, Which};
use crate::runtime::Result;

/// The kernel files that compile on f16 storage as well as f32 (their float buffers are of
/// type `Fs`, words of type `Ws`): what a plan at precision f16 runs (`gpu::half`).
pub const HALF_FILES: [&str; 7] = ["conv.wgsl", "spatial.wgsl", "copy.wgsl", "half.wgsl", "gemm.wgsl", "depthwise.wgsl", "gemm_coop.wgsl"];

/// The shared WGSL preamble (`shaders/common.wgsl`), prepended to every kernel file.
pub const PREAMBLE: &str = include_str!("../../../../shaders/common.wgsl");

/// WGSL sources, one file per kernel family beside its Rust file in this folder.
pub const SHADERS: [(&str, &str); 15] = [
    ("elementwise.wgsl", include_str!("../../../../shaders/elementwise.wgsl")),
    ("conv.wgsl", include_str!("../../../../shaders/conv.wgsl")),
    ("spatial.wgsl", include_str!("../../../../shaders/spatial.wgsl")),
    ("matmul.wgsl", include_str!("../../../../shaders/matmul.wgsl")),
    ("gemm.wgsl", include_str!("../../../../shaders/gemm.wgsl")),
    ("depthwise.wgsl", include_str!("../../../../shaders/depthwise.wgsl")),
    ("gemm_coop.wgsl", include_str!("../../../../shaders/gemm_coop.wgsl")),
    ("peak.wgsl", include_str!("../../../../shaders/peak.wgsl")),
    ("reduce_rows.wgsl", include_str!("../../../../shaders/reduce_rows.wgsl")),
    ("reduce.wgsl", include_str!("../../../../shaders/reduce.wgsl")),
    ("copy.wgsl", include_str!("../../../../shaders/copy.wgsl")),
    ("index.wgsl", include_str!("../../../../shaders/index.wgsl")),
    ("pad.wgsl", include_str!("../../../../shaders/pad.wgsl")),
    ("preprocess.wgsl", include_str!("../../../../shaders/preprocess.wgsl")),
    ("half.wgsl", include_str!("../../../../shaders/half.wgsl")),
];

/// A kernel file with the shared preamble, as it is compiled for f32 storage.
pub fn shader_source(file: &str) -> Option<String> {
    shader_source_as(file, false)
}

/// A kernel file with the shared preamble and its storage types: `Fs` (float storage) and `Ws`
/// (the element a copy moves) are f32 and u32, or f16 for both where `half`; `to_fs` and
/// `to_fs4` store an f32 sum as `Fs` (saturated to f16's range: an overflow is +-65504, not inf).
pub fn shader_source_as(file: &str, half: bool) -> Option<String> {
    SHADERS.iter().find(|(f, _)| *f == file).map(|(_, src)| {
        // `enable` directives open the module, ahead of the preamble
        let split = src.lines().take_while(|l| l.starts_with("enable ")).map(|l| l.len() + 1).sum::<usize>().min(src.len());
        let types = if half {
            "enable f16;\nalias Fs = f16;\nalias Ws = f16;\nfn to_fs(x: f32) -> Fs { return Fs(clamp(x, -65504.0, 65504.0)); }\n\
             fn to_fs4(v: vec4<f32>) -> vec4<Fs> { return vec4<Fs>(clamp(v, vec4<f32>(-65504.0), vec4<f32>(65504.0))); }\n"
        } else {
            "alias Fs = f32;\nalias Ws = u32;\nfn to_fs(x: f32) -> Fs { return x; }\nfn to_fs4(v: vec4<f32>) -> vec4<Fs> { return v; }\n"
        };
        // the f16 header's own `enable f16;` only where the file lacks it
        let (enables, types) = match types.split_once('\n') {
            Some((e, t)) if half && !src[..split].contains(e) => (format!("{e}\n{}", &src[..split]), t),
            Some((_, t)) if half => (src[..split].to_string(), t),
            _ => (src[..split].to_string(), types),
        };
        format!("{enables}{types}{PREAMBLE}\n{}", &src[split..])
    })
}

/// Every pipeline, created once per process, indexed by [`Which`]: on f32 storage at start,
/// and on f16 storage (the kernels of [`HALF_FILES`]) on the first plan that wants them.
pub(crate) struct Pipelines {
    pipes: Vec<Option<wgpu::ComputePipeline>>,
    half: std::sync::OnceLock<std::result::Result<Vec<Option<wgpu::ComputePipeline>>, String>>,
}

impl Pipelines {
    /// The pipeline of a kernel on f32 or f16 storage.
    pub(crate) fn get(&self, device: &wgpu::Device, which: Which, half: bool) -> Result<&wgpu::ComputePipeline> {
        let set = if half {
            self.half
                .get_or_init(|| {
                    if !device.features().contains(wgpu::Features::SHADER_F16) {
                        return Err("this adapter has no SHADER_F16".into());
                    }
                    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
                    let set = Self::compile(device, true);
                    match pollster::block_on(scope.pop()) {
                        Some(e) => Err(format!("compiling the f16 kernels: {e}")),
                        None => Ok(set),
                    }
                })
                .as_ref()
                .map_err(gpu_err)?
        } else {
            &self.pipes
        };
        set[which as usize].as_ref().ok_or_else(|| gpu_err(format!("{} has no {} kernel", which.entry(), if half { "f16" } else { "f32" })))
    }

    pub fn new(device: &wgpu::Device) -> Pipelines {
        Pipelines { pipes: Self::compile(device, false), half: Default::default() }
    }

    fn compile(device: &wgpu::Device, half: bool) -> Vec<Option<wgpu::ComputePipeline>> {
        let mut modules: std::collections::HashMap<&str, wgpu::ShaderModule> = Default::default();
        Which::ALL
            .iter()
            .map(|&w| {
                if half && !HALF_FILES.contains(&w.file()) {
                    return None;
                }
                let module = modules.entry(w.file()).or_insert_with(|| {
                    let src = shader_source_as(w.file(), half).unwrap_or_else(|| unreachable!("{} is in SHADERS", w.file()));
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(w.file()),
                        source: wgpu::ShaderSource::Wgsl(src.into()),
                    })
                });
                Some(device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(w.entry()),
                    layout: None,
                    module,
                    entry_point: Some(w.entry()),
                    compilation_options: Default::default(),
                    cache: None,
                }))
            })
            .collect()
    }
}
