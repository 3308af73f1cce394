//! The adapter's peaks, measured (`shaders/peak.wgsl`), not taken from a spec sheet: FP32
//! FMA throughput and copy bandwidth, each the best of three timed runs after a warm-up, for
//! the roofline of `walkout models profile --device gpu` and `walkout models kernels`.

use super::{gpu_err, GpuContext};
use crate::runtime::Result;

/// Measured peaks and how they were measured.
#[derive(Debug, Clone)]
pub struct Peaks {
    pub gflops: f64,
    pub gbps: f64,
    pub method: String,
}

const ITERS: u64 = 1024; // peak.wgsl's ITERS

/// Measures the peaks on this context's adapter (well under a second on a GPU; a few on
/// lavapipe, whose workloads are smaller).
pub fn measure(ctx: &GpuContext) -> Result<Peaks> {
    let d = &ctx.device;
    let src = super::kernels::shader_source("peak.wgsl").ok_or_else(|| gpu_err("peak.wgsl is not in SHADERS (this is a bug)"))?;
    let scope = d.push_error_scope(wgpu::ErrorFilter::Validation);
    let module =
        d.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some("peak.wgsl"), source: wgpu::ShaderSource::Wgsl(src.into()) });
    let pipe = |entry: &str| {
        d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("peak"),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    let (fma, copy) = (pipe("fma_peak"), pipe("copy_peak"));
    let hw = ctx.is_hardware();
    // bytes per copy buffer, within the binding limit
    let limit = d.limits().max_storage_buffer_binding_size.min(d.limits().max_buffer_size);
    let bytes = (if hw { 256u64 << 20 } else { 16u64 << 20 }).min(limit / 16 * 16).max(16);
    let buf = |size: u64| {
        d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("peak"),
            size,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (a, b) = (buf(bytes), buf(bytes));
    let bind = |p: &wgpu::ComputePipeline, with_src: bool| {
        let layout = p.get_bind_group_layout(0);
        let mut e = vec![wgpu::BindGroupEntry { binding: 0, resource: b.as_entire_binding() }];
        if with_src {
            e.push(wgpu::BindGroupEntry { binding: 1, resource: a.as_entire_binding() });
        }
        d.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &e })
    };
    let (fma_bg, copy_bg) = (bind(&fma, false), bind(&copy, true));
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(gpu_err(format!("peak kernels: {e}")));
    }
    let fma_groups: u64 = if hw { 1 << 16 } else { 64 };
    let copy_groups = (bytes / 16).div_ceil(256);
    let fold = |g: u64| -> [u32; 3] {
        let x = g.clamp(1, 4096);
        [x as u32, g.div_ceil(x) as u32, 1]
    };
    let best = |p: &wgpu::ComputePipeline, bg: &wgpu::BindGroup, groups: [u32; 3]| -> Result<f64> {
        let mut best = f64::INFINITY;
        for rep in 0..4 {
            let t0 = std::time::Instant::now();
            let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("peak") });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                pass.set_pipeline(p);
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            }
            ctx.queue.submit([enc.finish()]);
            d.poll(wgpu::PollType::wait_indefinitely()).map_err(gpu_err)?;
            if rep > 0 {
                best = best.min(t0.elapsed().as_secs_f64());
            }
        }
        Ok(best)
    };
    let fg = fold(fma_groups);
    let threads = fg[0] as u64 * fg[1] as u64 * 256;
    let t_fma = best(&fma, &fma_bg, fg)?;
    let cg = fold(copy_groups);
    let t_copy = best(&copy, &copy_bg, cg)?;
    let flops = threads * ITERS * 8 * 4 * 2;
    Ok(Peaks {
        gflops: flops as f64 / t_fma / 1e9,
        gbps: 2.0 * bytes as f64 / t_copy / 1e9,
        method: format!(
            "{:.2} GFLOP of vec4 FMA chains ({threads} threads) and a {} MiB vec4 copy, host-timed submit + wait, best of 3",
            flops as f64 / 1e9,
            bytes >> 20
        ),
    })
}
