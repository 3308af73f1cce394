//! Pad, gather and channel-affine dispatch (`shaders/pad.wgsl`, and the elementwise and
//! index files for the other two).

use super::*;

/// Whether a ChannelAffine, Pad or Gather node fits its kernel (constant side inputs).
pub(super) fn misc_ok(g: &Graph, n: &Node) -> bool {
    let konst = |i: usize| n.inputs.get(i).is_none_or(|v| g.consts.contains_key(v));
    let rank = g.values[n.inputs[0]].shape.as_ref().map_or(0, |s| s.len());
    match &n.op {
        Op::ChannelAffine => rank >= 2 && g.values[n.inputs[0]].dtype == DType::F32 && konst(1) && konst(2),
        Op::Pad { .. } => rank <= 8 && konst(1) && konst(2),
        Op::Gather { .. } => konst(1),
        _ => false,
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
pub(crate) struct PadP {
    pub(crate) n: u32,
    pub(crate) rank: u32,
    pub(crate) mode: u32,
    pub(crate) fill: u32,
    pub(crate) oshape: [u32; 8],
    pub(crate) ishape: [u32; 8],
    pub(crate) before: [i32; 8],
    pub(crate) istride: [u32; 8],
}

pub(super) fn misc(g: &Graph, n: &Node) -> Result<Launch> {
    let sh = |v: usize| g.values[v].shape.clone().unwrap_or_default();
    let out = n.outputs[0];
    let out_shape = sh(out);
    let total = numel(&out_shape);
    let konst = |i: usize| g.consts.get(&n.inputs[i]).ok_or_else(|| gpu_err("constant side input expected (this is a bug)"));
    let (which, u, aux): (Which, Vec<u8>, Option<Vec<u32>>) = match &n.op {
        Op::Unary(UnOp::Not) => {
            let p = ElemP {
                n: total as u32,
                rank: 1,
                op: 0,
                flags: 0,
                p0: 0.0,
                p1: 0.0,
                pad0: 0,
                pad1: 0,
                shape: [0; 8],
                sa: [0; 8],
                sb: [0; 8],
            };
            (Which::NotBool, bytes(&p), None)
        }
        Op::ChannelAffine => {
            let x = sh(n.inputs[0]);
            let c = x[1];
            let inner: usize = x[2..].iter().product();
            let sc = konst(1)?.cast(DType::F32);
            let sf = konst(2)?.cast(DType::F32);
            let words: Vec<u32> = sc.as_f32().unwrap_or(&[]).iter().chain(sf.as_f32().unwrap_or(&[])).map(|v| v.to_bits()).collect();
            let p = ElemP {
                n: total as u32,
                rank: c as u32,
                op: 0,
                flags: inner.max(1) as u32,
                p0: 0.0,
                p1: 0.0,
                pad0: 0,
                pad1: 0,
                shape: [0; 8],
                sa: [0; 8],
                sb: [0; 8],
            };
            (Which::ChannelAffine, bytes(&p), Some(words))
        }
        Op::Pad { mode } => {
            let x = sh(n.inputs[0]);
            let pads = konst(1)?.to_i64_vec().ok_or_else(|| gpu_err("pads must be integers"))?;
            let fill_t = match n.inputs.get(2) {
                Some(_) => konst(2)?.cast(g.values[n.inputs[0]].dtype),
                None => crate::graph::Tensor::zeros(g.values[n.inputs[0]].dtype, vec![1]),
            };
            let fill = crate::runtime::gpu::to_words(&fill_t).and_then(|w| w.first().copied()).unwrap_or(0);
            let ist = strides(&x);
            let mut p = PadP { n: total as u32, rank: x.len() as u32, fill, ..Default::default() };
            p.mode = match mode {
                crate::graph::PadMode::Constant => 0,
                crate::graph::PadMode::Edge => 1,
                crate::graph::PadMode::Reflect => 2,
            };
            for d in 0..x.len() {
                p.oshape[d] = out_shape[d] as u32;
                p.ishape[d] = x[d] as u32;
                p.before[d] = pads[d] as i32;
                p.istride[d] = ist[d] as u32;
            }
            (Which::Pad, bytes(&p), None)
        }
        Op::Gather { axis } => {
            let x = sh(n.inputs[0]);
            let a = if *axis < 0 { *axis + x.len() as i64 } else { *axis } as usize;
            let d = x[a] as i64;
            let idx = konst(1)?.to_i64_vec().ok_or_else(|| gpu_err("gather indices must be integers"))?;
            let words: Vec<u32> = idx.iter().map(|&i| (if i < 0 { i + d } else { i }).clamp(0, d - 1) as u32).collect();
            let p = IxP {
                a: x[..a].iter().product::<usize>() as u32,
                b: idx.len() as u32,
                c: x[a + 1..].iter().product::<usize>() as u32,
                d: d as u32,
                ..Default::default()
            };
            (Which::GatherAxis, bytes(&p), Some(words))
        }
        _ => return Err(gpu_err("not a misc op")),
    };
    let x = Arg::Value(n.inputs[0]);
    let args = match (which, aux) {
        (Which::ChannelAffine | Which::GatherAxis, Some(words)) => vec![(1, x), (2, Arg::Words(words)), (3, Arg::Value(out))],
        (Which::Pad, _) => vec![(1, x), (2, Arg::Value(out))],
        _ => vec![(1, x), (3, Arg::Value(out))],
    };
    Ok(Launch { which, parts: vec![Part { params: u, args, groups: groups_1d(total) }], half: false })
}
