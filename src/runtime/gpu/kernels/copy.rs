//! The strided-copy kernel (`shaders/copy.wgsl`): slices, transposes, concat and stack,
//! split and unstack, tile and expand as strided copies.

use super::*;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
pub(crate) struct CpP {
    pub(crate) n: u32,
    pub(crate) rank: u32,
    pub(crate) src_off: u32,
    pub(crate) dst_off: u32,
    pub(crate) shape: [u32; 8],
    pub(crate) ss: [i32; 8],
    pub(crate) ds: [u32; 8],
    pub(crate) md: [u32; 8],
}

/// One strided copy: iterate `shape`; source offset and strides (signed), destination
/// offset and strides, optional modulo per dim.
pub(super) fn cp(shape: &[usize], src_off: i64, ss: &[i64], dst_off: usize, ds: &[usize], md: &[usize]) -> Option<CpP> {
    if shape.len() > 8 || src_off < 0 {
        return None;
    }
    let mut p =
        CpP { n: numel(shape) as u32, rank: shape.len() as u32, src_off: src_off as u32, dst_off: dst_off as u32, ..Default::default() };
    for d in 0..shape.len() {
        p.shape[d] = shape[d] as u32;
        p.ss[d] = ss[d] as i32;
        p.ds[d] = ds[d] as u32;
        p.md[d] = md.get(d).copied().unwrap_or(0) as u32;
    }
    Some(p)
}

/// The strided copies (source value, destination value, params) a data-movement node is.
pub(super) fn copy_parts(g: &Graph, n: &Node) -> Option<Vec<(usize, usize, CpP)>> {
    use crate::graph::eval;
    let shp = |v: usize| g.values[v].shape.clone();
    let ints = |v: usize| g.consts.get(&v).and_then(|t| t.to_i64_vec());
    let st = |s: &[usize]| strides(s).into_iter().map(|x| x as i64).collect::<Vec<i64>>();
    let data: Vec<usize> = match &n.op {
        Op::StridedSlice(_) | Op::Slice | Op::Tile | Op::Expand => vec![n.inputs[0]],
        Op::Concat => n.inputs[..n.inputs.len() - 1].to_vec(),
        Op::Split { .. } => vec![n.inputs[1]],
        _ => n.inputs.clone(),
    };
    if data
        .iter()
        .chain(&n.outputs)
        .any(|&v| !gpu_dtype(g.values[v].dtype) && g.values[v].dtype != DType::F16 || shp(v).is_none_or(|s| s.len() > 8))
    {
        return None;
    }
    // f16 elements (half.wgsl's `W`) or words, not both
    let halves = data.iter().chain(&n.outputs).filter(|&&v| g.values[v].dtype == DType::F16).count();
    if halves != 0 && halves != data.len() + n.outputs.len() {
        return None;
    }
    let out = n.outputs[0];
    match &n.op {
        Op::StridedSlice(m) => {
            let x = shp(n.inputs[0])?;
            let plan = eval::strided_slice_plan(&x, &ints(n.inputs[1])?, &ints(n.inputs[2])?, &ints(n.inputs[3])?, m).ok()?;
            let ist = st(&x);
            let it: Vec<usize> = plan.dims.iter().map(|d| d.2).collect();
            let off: i64 = plan.dims.iter().zip(&ist).map(|(d, s)| d.0 * s).sum();
            let ss: Vec<i64> = plan.dims.iter().zip(&ist).map(|(d, s)| d.1 * s).collect();
            Some(vec![(n.inputs[0], out, cp(&it, off, &ss, 0, &strides(&it), &[])?)])
        }
        Op::Slice => {
            let x = shp(n.inputs[0])?;
            let dims = eval::onnx_slice_dims(
                &x,
                n.inputs.get(1).and_then(|v| g.consts.get(v)),
                n.inputs.get(2).and_then(|v| g.consts.get(v)),
                n.inputs.get(3).and_then(|v| g.consts.get(v)),
                n.inputs.get(4).and_then(|v| g.consts.get(v)),
            )
            .ok()?;
            let ist = st(&x);
            let it: Vec<usize> = dims.iter().map(|d| d.2).collect();
            let off: i64 = dims.iter().zip(&ist).map(|(d, s)| d.0 * s).sum();
            let ss: Vec<i64> = dims.iter().zip(&ist).map(|(d, s)| d.1 * s).collect();
            Some(vec![(n.inputs[0], out, cp(&it, off, &ss, 0, &strides(&it), &[])?)])
        }
        Op::Transpose { perm } => {
            let x = shp(n.inputs[0])?;
            let perm = eval::full_perm(perm, x.len());
            let ist = st(&x);
            let it: Vec<usize> = perm.iter().map(|&p| x[p]).collect();
            let ss: Vec<i64> = perm.iter().map(|&p| ist[p]).collect();
            Some(vec![(n.inputs[0], out, cp(&it, 0, &ss, 0, &strides(&it), &[])?)])
        }
        Op::Tile | Op::Expand => {
            let x = shp(n.inputs[0])?;
            let o = shp(out)?;
            let off = o.len() - x.len();
            let ist = st(&x);
            let mut ss = vec![0i64; o.len()];
            let mut md = vec![0usize; o.len()];
            for d in 0..x.len() {
                if matches!(n.op, Op::Tile) {
                    ss[off + d] = ist[d];
                    md[off + d] = x[d];
                } else if x[d] != 1 {
                    ss[off + d] = ist[d];
                }
            }
            Some(vec![(n.inputs[0], out, cp(&o, 0, &ss, 0, &strides(&o), &md)?)])
        }
        Op::Concat | Op::Pack { .. } => {
            let o = shp(out)?;
            let ost = strides(&o);
            let k = if matches!(n.op, Op::Concat) { n.inputs.len() - 1 } else { n.inputs.len() };
            let axis = match n.op {
                Op::Concat => {
                    let a = ints(*n.inputs.last()?)?[0];
                    if a < 0 {
                        a + o.len() as i64
                    } else {
                        a
                    }
                }
                Op::Pack { axis } => {
                    if axis < 0 {
                        axis + o.len() as i64
                    } else {
                        axis
                    }
                }
                _ => return None,
            } as usize;
            let mut parts = Vec::with_capacity(k);
            let mut start = 0usize;
            for &v in &n.inputs[..k] {
                let mut it = shp(v)?;
                if matches!(n.op, Op::Pack { .. }) {
                    it.insert(axis, 1);
                }
                let len = it[axis];
                parts.push((v, out, cp(&it, 0, &st(&it), start * ost[axis], &ost, &[])?));
                start += len;
            }
            Some(parts)
        }
        Op::Split { .. } | Op::SplitV { .. } | Op::Unpack { .. } => {
            let xv = if matches!(n.op, Op::Split { .. }) { n.inputs[1] } else { n.inputs[0] };
            let x = shp(xv)?;
            let ist = st(&x);
            let axis = match &n.op {
                Op::Split { .. } => ints(n.inputs[0])?[0],
                Op::SplitV { axis, .. } | Op::Unpack { axis, .. } => *axis,
                _ => return None,
            };
            let axis = if axis < 0 { axis + x.len() as i64 } else { axis } as usize;
            let mut parts = Vec::with_capacity(n.outputs.len());
            let mut start = 0i64;
            for &o in &n.outputs {
                let mut it = shp(o)?;
                if matches!(n.op, Op::Unpack { .. }) {
                    it.insert(axis, 1);
                }
                let len = it[axis] as i64;
                parts.push((xv, o, cp(&it, start * ist[axis], &ist, 0, &strides(&it), &[])?));
                start += len;
            }
            Some(parts)
        }
        _ => None,
    }
}
