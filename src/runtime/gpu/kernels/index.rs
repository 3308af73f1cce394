//! Index-driven kernels (`shaders/index.wgsl`): top-k, GatherND, argmax, select, AddN and
//! gather along an axis.

use super::*;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
pub(crate) struct IxP {
    pub(crate) a: u32,
    pub(crate) b: u32,
    pub(crate) c: u32,
    pub(crate) d: u32,
    pub(crate) e: u32,
    pub(crate) f: u32,
    pub(crate) g: u32,
    pub(crate) h: u32,
    pub(crate) st: [u32; 8],
}

/// Kernel, uniforms and an auxiliary word table for the index-driven ops (int32 indices,
/// f32 or i32 data).
pub(super) fn index_params(g: &Graph, n: &Node) -> Option<(Which, IxP, Vec<u32>)> {
    let shp = |v: usize| g.values[v].shape.clone();
    let dt = |v: usize| g.values[v].dtype;
    let data_ok = |v: usize| matches!(dt(v), DType::F32 | DType::I32 | DType::I64);
    let int_ok = |d: DType| matches!(d, DType::I32 | DType::I64);
    match &n.op {
        Op::TopK { axis, largest, index } => {
            let x = shp(n.inputs[0])?;
            let r = x.len();
            let a = if *axis < 0 { *axis + r as i64 } else { *axis };
            let k = g.consts.get(&n.inputs[1])?.to_i64_vec()?.first().copied()? as usize;
            if r == 0 || a != r as i64 - 1 || !int_ok(*index) || !data_ok(n.inputs[0]) || k == 0 || k > 64 {
                return None;
            }
            let nlast = x[r - 1];
            let p = IxP {
                a: (numel(&x) / nlast.max(1)) as u32,
                b: nlast as u32,
                c: k as u32,
                d: *largest as u32,
                e: int_ok(dt(n.inputs[0])) as u32,
                ..Default::default()
            };
            Some((Which::TopK, p, vec![0]))
        }
        Op::GatherNd => {
            let (ps, is) = (shp(n.inputs[0])?, shp(n.inputs[1])?);
            let k = *is.last()?;
            if !int_ok(dt(n.inputs[1])) || !data_ok(n.inputs[0]) || k == 0 || k > 8 || k > ps.len() {
                return None;
            }
            let pst = strides(&ps);
            let mut st = [0u32; 8];
            for j in 0..k {
                st[j] = pst[j] as u32;
            }
            let p = IxP {
                a: (numel(&is) / k) as u32,
                b: k as u32,
                c: ps[k..].iter().product::<usize>() as u32,
                d: numel(&ps) as u32,
                st,
                ..Default::default()
            };
            Some((Which::GatherNd, p, vec![0]))
        }
        Op::ArgMax { dtype, select_last, .. } => {
            let x = shp(n.inputs[0])?;
            let a = g.consts.get(&n.inputs[1])?.to_i64_vec()?.first().copied()?;
            let a = if a < 0 { a + x.len() as i64 } else { a } as usize;
            if !int_ok(*dtype) || !data_ok(n.inputs[0]) || a >= x.len() {
                return None;
            }
            let p = IxP {
                a: x[..a].iter().product::<usize>() as u32,
                b: x[a] as u32,
                c: x[a + 1..].iter().product::<usize>() as u32,
                e: int_ok(dt(n.inputs[0])) as u32,
                f: *select_last as u32,
                ..Default::default()
            };
            Some((Which::ArgMax, p, vec![0]))
        }
        Op::Select => {
            let o = shp(n.outputs[0])?;
            if o.len() > 8 || dt(n.inputs[0]) != DType::Bool || dt(n.inputs[1]) != dt(n.inputs[2]) || !data_ok(n.inputs[1]) {
                return None;
            }
            let rank = o.len().max(1);
            let (c, a, b) = (bstrides(&shp(n.inputs[0])?, rank), bstrides(&shp(n.inputs[1])?, rank), bstrides(&shp(n.inputs[2])?, rank));
            let mut st = [1u32; 8];
            for (i, &d) in o.iter().enumerate() {
                st[i] = d as u32;
            }
            let table: Vec<u32> = (0..rank).flat_map(|d| [c[d], a[d], b[d]]).collect();
            Some((Which::Select, IxP { a: numel(&o) as u32, b: o.len() as u32, st, ..Default::default() }, table))
        }
        Op::AddN => {
            let o = shp(n.outputs[0])?;
            let same = n.inputs.iter().all(|&v| shp(v).as_ref() == Some(&o) && dt(v) == dt(n.outputs[0]));
            if !(2..=4).contains(&n.inputs.len()) || !same || !data_ok(n.outputs[0]) {
                return None;
            }
            Some((
                Which::AddN,
                IxP { a: numel(&o) as u32, b: n.inputs.len() as u32, c: int_ok(dt(n.outputs[0])) as u32, ..Default::default() },
                vec![0],
            ))
        }
        _ => None,
    }
}
