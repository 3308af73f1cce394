//! Preprocessing on the GPU (`shaders/preprocess.wgsl`): one kernel turns a batch of u8 RGB
//! frames of any sizes into the letterboxed, model-typed input tensor; another cuts person
//! crops out of the frames into a re-identification model's input, the same arithmetic as
//! `vision::crop`, so crops never pass through the host.

use super::{from_words, gpu_err, GpuContext};
use crate::graph::{DType, Layout, Tensor};
use crate::runtime::Letterbox;
use crate::runtime::Result;
use bytemuck::{Pod, Zeroable};
use image::RgbImage;
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// The model input a batch is turned into.
pub type PreSpec = crate::runtime::FrameSpec;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct PreP {
    pub(crate) b: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) nchw: u32,
    pub(crate) dtype: u32,
    pub(crate) pad0: u32,
    pub(crate) pad1: u32,
    pub(crate) pad2: u32,
    pub(crate) mean: [f32; 4],
    pub(crate) inv_std: [f32; 4],
}

/// The letterbox and crop kernels, compiled once.
pub struct GpuPreprocessor {
    ctx: Arc<GpuContext>,
    pipeline: wgpu::ComputePipeline,
    crop: wgpu::ComputePipeline,
}

pub use crate::runtime::CropRect;

impl std::fmt::Debug for GpuPreprocessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GpuPreprocessor")
    }
}

impl GpuPreprocessor {
    pub fn new(ctx: Arc<GpuContext>) -> Result<Self> {
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("preprocess.wgsl"),
            source: wgpu::ShaderSource::Wgsl(
                super::kernels::shader_source("preprocess.wgsl").unwrap_or_else(|| unreachable!("preprocess.wgsl is in SHADERS")).into(),
            ),
        });
        let make = |entry: &str| {
            ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let (pipeline, crop) = (make("letterbox"), make("crop"));
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(gpu_err(format!("preprocess kernel: {e}")));
        }
        Ok(GpuPreprocessor { ctx, pipeline, crop })
    }

    /// Encodes the batch into a new GPU buffer holding the input tensor; returns the buffer
    /// and where each frame was placed.
    pub fn encode(&self, frames: &[&RgbImage], spec: &PreSpec) -> Result<(wgpu::Buffer, Vec<Letterbox>)> {
        let out = self.output(frames.len(), spec);
        let boxes = self.encode_into(frames, spec, &out)?;
        Ok((out, boxes))
    }

    /// Encodes and submits the kernel writing the batch into `out` (a storage buffer of at
    /// least batch x height x width x 3 words, such as a plan's input buffer); later
    /// submissions on the queue see the result.
    pub fn encode_into(&self, frames: &[&RgbImage], spec: &PreSpec, out: &wgpu::Buffer) -> Result<Vec<Letterbox>> {
        let (words, meta, boxes) = letterbox_args(frames, spec)?;
        self.dispatch(&self.pipeline, frames.len(), spec, &words, &meta, out)?;
        Ok(boxes)
    }

    /// Encodes and submits the crop kernel: crop `k` of `rects` cut from its frame of
    /// `frames` and resampled into item `k` of `out` (a storage buffer of at least
    /// crops x height x width x 3 words, such as a ReID plan's input buffer).
    pub fn crop_into(&self, frames: &[&RgbImage], rects: &[CropRect], spec: &PreSpec, out: &wgpu::Buffer) -> Result<()> {
        let (words, meta) = crop_args(frames, rects, spec)?;
        self.dispatch(&self.crop, rects.len(), spec, &words, &meta, out)
    }

    /// Runs the crop kernel and reads the crops back to the host.
    pub fn crops(&self, frames: &[&RgbImage], rects: &[CropRect], spec: &PreSpec) -> Result<Tensor> {
        let out = self.output(rects.len(), spec);
        self.crop_into(frames, rects, spec, &out)?;
        self.read_back(&out, rects.len(), spec)
    }

    /// A buffer for `n` model inputs of `spec`.
    fn output(&self, n: usize, spec: &PreSpec) -> wgpu::Buffer {
        self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("model input"),
            size: ((n * spec.height * spec.width * 3).max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// One dispatch of `pipeline` over `n` model inputs of `spec` into `out`.
    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        n: usize,
        spec: &PreSpec,
        words: &[u32],
        meta: &[u32],
        out: &wgpu::Buffer,
    ) -> Result<()> {
        let total = n * spec.height * spec.width * 3;
        if out.size() < (total * 4) as u64 {
            return Err(gpu_err(format!("preprocess output buffer holds {} bytes, the batch needs {}", out.size(), total * 4)));
        }
        let p = params(n, spec);
        let d = &self.ctx.device;
        let init =
            |contents: &[u8], usage| d.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some("preprocess"), contents, usage });
        let ub = init(bytemuck::bytes_of(&p), wgpu::BufferUsages::UNIFORM);
        // a binding may not be empty
        let pix = init(bytemuck::cast_slice(if words.is_empty() { &[0u32] } else { words }), wgpu::BufferUsages::STORAGE);
        let mb = init(bytemuck::cast_slice(meta), wgpu::BufferUsages::STORAGE);
        let layout = pipeline.get_bind_group_layout(0);
        let bg = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: ub.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: pix.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: mb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: out.as_entire_binding() },
            ],
        });
        let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("preprocess") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("preprocess"), timestamp_writes: None });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bg, &[]);
            let g = total.div_ceil(256).max(1);
            let x = g.min(4096);
            pass.dispatch_workgroups(x as u32, g.div_ceil(x) as u32, 1);
        }
        self.ctx.queue.submit([enc.finish()]);
        Ok(())
    }

    /// Runs the kernel and reads the input tensor back to the host.
    pub fn run(&self, frames: &[&RgbImage], spec: &PreSpec) -> Result<(Tensor, Vec<Letterbox>)> {
        let (buf, boxes) = self.encode(frames, spec)?;
        Ok((self.read_back(&buf, frames.len(), spec)?, boxes))
    }

    /// `n` model inputs of `spec` read back from `buf`.
    fn read_back(&self, buf: &wgpu::Buffer, n: usize, spec: &PreSpec) -> Result<Tensor> {
        let size = buf.size();
        let d = &self.ctx.device;
        let read = d.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(buf, 0, &read, 0, size);
        self.ctx.queue.submit([enc.finish()]);
        read.slice(..).map_async(wgpu::MapMode::Read, |_| {});
        d.poll(wgpu::PollType::wait_indefinitely()).map_err(gpu_err)?;
        let shape = match spec.layout {
            Layout::Nhwc => vec![n, spec.height, spec.width, 3],
            Layout::Nchw => vec![n, 3, spec.height, spec.width],
        };
        let t = {
            let data = read.slice(..).get_mapped_range().map_err(gpu_err)?;
            from_words(bytemuck::cast_slice(&data), spec.dtype, shape)
        };
        read.unmap();
        Ok(t)
    }
}

/// The letterbox kernel's operands for a batch (any backend): the frames' packed bytes, and
/// per frame its first word, size, resized size and bars; and where each frame lands.
pub(crate) fn letterbox_args(frames: &[&RgbImage], spec: &PreSpec) -> Result<(Vec<u32>, Vec<u32>, Vec<Letterbox>)> {
    if frames.is_empty() || !matches!(spec.dtype, DType::F32 | DType::I32) {
        return Err(gpu_err("preprocess needs at least one frame and an f32 or i32 model input"));
    }
    let (words, offsets) = pack(frames);
    let mut meta: Vec<u32> = Vec::with_capacity(frames.len() * 8);
    let mut boxes = Vec::with_capacity(frames.len());
    for (f, off) in frames.iter().zip(offsets) {
        let lb = Letterbox::new(f.width(), f.height(), spec.width, spec.height);
        let rw = ((f.width() as f32 * lb.scale).round() as u32).clamp(1, spec.width as u32);
        let rh = ((f.height() as f32 * lb.scale).round() as u32).clamp(1, spec.height as u32);
        meta.extend_from_slice(&[off, f.width(), f.height(), rw, rh, lb.pad_x as u32, lb.pad_y as u32, 0]);
        boxes.push(lb);
    }
    Ok((words, meta, boxes))
}

/// The crop kernel's operands (any backend): the frames' packed bytes, and per crop its
/// frame's first word, size and validity, then its rectangle as f32 bits.
pub(crate) fn crop_args(frames: &[&RgbImage], rects: &[CropRect], spec: &PreSpec) -> Result<(Vec<u32>, Vec<u32>)> {
    if rects.is_empty() || !matches!(spec.dtype, DType::F32 | DType::I32) {
        return Err(gpu_err("cropping needs at least one crop and an f32 or i32 model input"));
    }
    let (words, offsets) = pack(frames);
    let mut meta: Vec<u32> = Vec::with_capacity(rects.len() * 8);
    for (frame, r) in rects {
        match frame.and_then(|i| Some((frames.get(i)?, offsets[i]))) {
            Some((f, off)) => {
                meta.extend_from_slice(&[off, f.width(), f.height(), 1]);
                meta.extend(r.iter().map(|v| v.to_bits()));
            }
            None => meta.extend_from_slice(&[0; 8]),
        }
    }
    Ok((words, meta))
}

/// The parameter block of either kernel for `n` model inputs of `spec`.
pub(crate) fn params(n: usize, spec: &PreSpec) -> PreP {
    PreP {
        b: n as u32,
        h: spec.height as u32,
        w: spec.width as u32,
        nchw: (spec.layout == Layout::Nchw) as u32,
        dtype: (spec.dtype == DType::I32) as u32,
        pad0: 0,
        pad1: 0,
        pad2: 0,
        mean: [spec.mean[0], spec.mean[1], spec.mean[2], 0.0],
        inv_std: [1.0 / spec.std[0], 1.0 / spec.std[1], 1.0 / spec.std[2], 1.0],
    }
}

/// The frames' bytes packed four to a word, and each frame's first word.
fn pack(frames: &[&RgbImage]) -> (Vec<u32>, Vec<u32>) {
    let mut words: Vec<u32> = Vec::new();
    let mut offsets = Vec::with_capacity(frames.len());
    for f in frames {
        offsets.push(words.len() as u32);
        words.extend(f.as_raw().chunks(4).map(|c| {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(b)
        }));
    }
    (words, offsets)
}
