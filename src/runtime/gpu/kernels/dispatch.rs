//! Launches realised for wgpu (`Dispatch`): a pipeline (the kernel table's, or a tuned
//! specialisation of `gpu::tiles` and `gpu::subgroups`), and per part a bind group and
//! workgroup counts.

use super::*;

/// A launch recorded for wgpu: pipeline, and a bind group and workgroup counts per part.
#[derive(Debug)]
pub(crate) struct Dispatch {
    which: Which,
    /// The kernel's pipeline on f32 or f16 storage (unused where `tuned` replaces it).
    pipe: wgpu::ComputePipeline,
    /// A tuned specialisation that replaces `which`'s pipeline, and its profile name.
    tuned: Option<(std::sync::Arc<crate::runtime::gpu::tiles::Tuned>, &'static str)>,
    binds: Vec<(wgpu::BindGroup, [u32; 3])>,
}

impl Dispatch {
    pub fn kernel_name(&self) -> &'static str {
        self.tuned.as_ref().map(|t| t.1).unwrap_or_else(|| name_of(self.which))
    }

    /// Buffers and bind groups for a launch: the parameter block as a uniform buffer, carried
    /// words as storage buffers, values as their buffers in the plan.
    pub fn realize(ctx: &GpuContext, g: &Graph, launch: &Launch, buf_of: &[Option<usize>], buffers: &[wgpu::Buffer]) -> Result<Dispatch> {
        let pipe = ctx.pipes.get(&ctx.device, launch.which, launch.half)?.clone();
        let layout = pipe.get_bind_group_layout(0);
        let parts: Vec<PartRef<'_>> = launch.parts.iter().map(|p| (&p.params[..], &p.args[..], p.groups)).collect();
        let binds = realize_parts(ctx, g, &parts, 0, &layout, buf_of, buffers)?;
        Ok(Dispatch { which: launch.which, pipe, tuned: None, binds })
    }

    /// A launch realised on a tuned specialisation: `args` at its bindings, the parameter
    /// block at `uniform_at`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn realize_tuned(
        ctx: &GpuContext,
        g: &Graph,
        launch: &Launch,
        tuned: (std::sync::Arc<crate::runtime::gpu::tiles::Tuned>, &'static str),
        args: &[(u32, Arg)],
        uniform_at: u32,
        groups: [u32; 3],
        bufs: (&[Option<usize>], &[wgpu::Buffer]),
    ) -> Result<Dispatch> {
        let params = launch.parts.first().map(|p| &p.params[..]).unwrap_or_default();
        let binds = realize_parts(ctx, g, &[(params, args, groups)], uniform_at, &tuned.0.layout, bufs.0, bufs.1)?;
        Ok(Dispatch { which: launch.which, pipe: tuned.0.pipe.clone(), tuned: Some(tuned), binds })
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipe);
        for (bg, gr) in &self.binds {
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(gr[0], gr[1], gr[2]);
        }
    }
}

type PartRef<'a> = (&'a [u8], &'a [(u32, Arg)], [u32; 3]);

fn realize_parts(
    ctx: &GpuContext,
    g: &Graph,
    parts: &[PartRef<'_>],
    uniform_at: u32,
    layout: &wgpu::BindGroupLayout,
    buf_of: &[Option<usize>],
    buffers: &[wgpu::Buffer],
) -> Result<Vec<(wgpu::BindGroup, [u32; 3])>> {
    let mut binds = Vec::with_capacity(parts.len());
    let most = ctx.device.limits().max_compute_workgroups_per_dimension;
    for (params, args, groups) in parts {
        // wgpu would only log an oversized dispatch and leave the output unwritten
        if groups.iter().any(|&n| n > most) {
            return Err(gpu_err(format!(
                "a launch of {groups:?} workgroups passes this adapter's {most} per dimension (a smaller batch fits)"
            )));
        }
        let u = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: params,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let carried: Vec<Option<wgpu::Buffer>> =
            args.iter().map(|(_, a)| if let Arg::Words(w) = a { Some(storage(ctx, w)) } else { None }).collect();
        let mut entries: Vec<(u32, &wgpu::Buffer)> = vec![(uniform_at, &u)];
        for ((i, a), c) in args.iter().zip(&carried) {
            let b = match (a, c) {
                (Arg::Value(v), _) => buf_of[*v]
                    .map(|b| &buffers[b])
                    .ok_or_else(|| gpu_err(format!("value '{}' has no GPU buffer (this is a bug)", g.values[*v].name)))?,
                (Arg::Words(_), Some(c)) => c,
                (Arg::Words(_), None) => unreachable!("carried words have a buffer"),
            };
            entries.push((*i, b));
        }
        binds.push((bind_layout(ctx, layout, &entries), *groups));
    }
    Ok(binds)
}

/// Bind group of `(binding, buffer)` entries; auto layouts only hold the bindings an entry
/// point uses.
fn bind_layout(ctx: &GpuContext, layout: &wgpu::BindGroupLayout, entries: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
    let e: Vec<wgpu::BindGroupEntry> =
        entries.iter().map(|(i, b)| wgpu::BindGroupEntry { binding: *i, resource: b.as_entire_binding() }).collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout, entries: &e })
}

pub(super) fn storage(ctx: &GpuContext, words: &[u32]) -> wgpu::Buffer {
    let data: Vec<u32> = if words.is_empty() { vec![0] } else { words.to_vec() };
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("aux"),
        contents: bytemuck::cast_slice(&data),
        usage: wgpu::BufferUsages::STORAGE,
    })
}
