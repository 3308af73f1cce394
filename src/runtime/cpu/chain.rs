//! Chains of f32 elementwise ops run as one step, a block of the output at a time.
//!
//! A broadcasting binary or unary f32 op whose result only the next elementwise op reads,
//! at the same output shape, is run inside that op: each block of `BLOCK` output elements
//! goes through the whole chain with its intermediates in a few kilobytes of scratch,
//! instead of every op reading and writing the full tensor. MoveNet's decoder runs eight
//! such ops over `[64, 64, 6, 17]` (1.7 MB each) between its keypoint offsets and the
//! `ReduceMax`; as separate steps they took 2 ms on one core of this machine, waiting on
//! memory. Inputs from outside the chain are broadcast into the block (`Bcast`), with the
//! dimensions that broadcast alike merged, so a `[64, 64, 1, 1]` input fills runs of 102.

use super::simd::{self, Isa};
use super::Step;
use crate::graph::{self, BinOp, Graph, UnOp, ValueId};
use rayon::prelude::*;
pub(super) use sinks::fuse_sinks;
use sinks::Sink;

mod sinks;

/// Output elements per block: the intermediates of a chain of ten ops take 40 KB.
const BLOCK: usize = 512;

/// Where an operand comes from: an input of the chain, or the result of an earlier op.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Arg {
    In(usize),
    Op(usize),
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Bin(BinOp),
    Un(UnOp),
}

#[derive(Debug)]
struct ChainOp {
    kind: Kind,
    args: Vec<Arg>,
}

/// How one input of a chain maps onto the output, with the dimensions that broadcast
/// alike merged: `dims` are output extents, `strides` the input's (0 where broadcast).
#[derive(Debug)]
struct Bcast {
    /// The input has the output's shape: blocks are slices of it.
    same: bool,
    dims: Vec<usize>,
    strides: Vec<usize>,
}

impl Bcast {
    fn new(input: &[usize], out: &[usize]) -> Self {
        let rank = out.len();
        let off = rank.saturating_sub(input.len());
        let in_dim = |i: usize| if i < off { 1 } else { input[i - off] };
        // the input's contiguous strides, 0 where it broadcasts
        let mut strides = vec![0usize; rank];
        let mut s = 1;
        for i in (0..rank).rev() {
            if in_dim(i) != 1 {
                strides[i] = s;
                s *= in_dim(i);
            }
        }
        let (mut dims, mut st): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        for i in 0..rank {
            if out[i] == 1 {
                continue;
            }
            match (dims.last_mut(), st.last()) {
                // a broadcast dim after a broadcast dim, or one contiguous with the last
                (Some(d), Some(&ls)) if (ls == 0 && strides[i] == 0) || (ls != 0 && ls == strides[i] * out[i]) => {
                    *d *= out[i];
                    if let Some(l) = st.last_mut() {
                        *l = strides[i];
                    }
                }
                _ => {
                    dims.push(out[i]);
                    st.push(strides[i]);
                }
            }
        }
        // shapes that broadcast and hold as many elements differ only by dims of 1
        let same = input.iter().product::<usize>() == out.iter().product::<usize>();
        Bcast { same, dims, strides: st }
    }

    /// The period `p` when output element `i` is `x[i % p]`: the input broadcasts along
    /// every dim before its trailing contiguous ones (`[1, 1, 6, 17]` against
    /// `[64, 64, 6, 17]`, a 3-channel mean against an image).
    fn period(&self) -> Option<usize> {
        match (self.dims.as_slice(), self.strides.as_slice()) {
            ([], _) => Some(1),
            ([p], [1]) | ([_, p], [0, 1]) => Some(*p),
            _ => None,
        }
    }

    /// The input repeated to cover `BLOCK` elements from any phase of its period, for
    /// `gather` (empty unless the input is periodic).
    fn tile(&self, x: &[f32]) -> Vec<f32> {
        match self.period() {
            Some(p) if !self.same && p <= BLOCK => x[..p].iter().copied().cycle().take(BLOCK + p).collect(),
            _ => Vec::new(),
        }
    }

    /// Output elements `lo..lo + dst.len()` of this input broadcast, into `dst`; `tile` is
    /// the input's `Bcast::tile`.
    #[inline(always)]
    fn gather(&self, x: &[f32], tile: &[f32], lo: usize, dst: &mut [f32]) {
        if let (Some(p), false) = (self.period(), tile.is_empty()) {
            let at = lo % p;
            dst.copy_from_slice(&tile[at..at + dst.len()]);
            return;
        }
        if self.dims.is_empty() {
            dst.fill(x.first().copied().unwrap_or(0.0));
            return;
        }
        match (self.dims.as_slice(), self.strides.as_slice()) {
            // each input value repeated `rep` times (`[64, 64, 6, 1]` against `[.., 17]`)
            (&[_, rep], &[1, 0]) => {
                let (mut src, mut phase, mut done) = (lo / rep, lo % rep, 0);
                while done < dst.len() {
                    let run = (rep - phase).min(dst.len() - done);
                    let v = x[src];
                    dst[done..done + run].iter_mut().for_each(|o| *o = v);
                    (done, phase, src) = (done + run, 0, src + 1);
                }
                return;
            }
            // each input row of `c` repeated `times` times (`[64, 64, 1, 17]` against
            // `[.., 6, 17]`)
            (&[_, times, c], &[sc, 0, 1]) if sc == c => {
                let (mut row, mut t, mut phase, mut done) = (lo / (times * c), (lo / c) % times, lo % c, 0);
                while done < dst.len() {
                    let run = (c - phase).min(dst.len() - done);
                    let at = row * c + phase;
                    dst[done..done + run].iter_mut().zip(&x[at..at + run]).for_each(|(o, &v)| *o = v);
                    done += run;
                    phase = 0;
                    t += 1;
                    if t == times {
                        (t, row) = (0, row + 1);
                    }
                }
                return;
            }
            _ => {}
        }
        let r = self.dims.len();
        // the coordinates of lo, innermost last (merged dims never outnumber the output's,
        // and `fuse_chains` takes outputs of rank 8 at most)
        let mut coord = [0usize; 8];
        let mut rem = lo;
        for i in (0..r).rev() {
            coord[i] = rem % self.dims[i];
            rem /= self.dims[i];
        }
        let mut off: usize = coord.iter().zip(&self.strides).map(|(c, s)| c * s).sum();
        let (inner, ist) = (self.dims[r - 1], self.strides[r - 1]);
        let mut done = 0;
        while done < dst.len() {
            let run = (inner - coord[r - 1]).min(dst.len() - done);
            let d = &mut dst[done..done + run];
            // short runs (MoveNet's 3 channels, 17 keypoints) in plain loops, not through
            // calls to memset and memcpy
            match ist {
                0 if run < 64 => {
                    let v = x[off];
                    d.iter_mut().for_each(|o| *o = v);
                }
                0 => d.fill(x[off]),
                1 if run < 64 => d.iter_mut().zip(&x[off..off + run]).for_each(|(o, &v)| *o = v),
                1 => d.copy_from_slice(&x[off..off + run]),
                s => d.iter_mut().enumerate().for_each(|(j, v)| *v = x[off + j * s]),
            }
            done += run;
            off += run * ist;
            coord[r - 1] += run;
            // carry into the outer dims
            let mut i = r - 1;
            while coord[i] == self.dims[i] && i > 0 {
                off -= coord[i] * self.strides[i];
                coord[i] = 0;
                i -= 1;
                coord[i] += 1;
                off += self.strides[i];
            }
        }
    }
}

/// The data of a chain's inputs, and their tiles (`Bcast::tile`).
struct Inputs<'a> {
    xs: &'a [&'a [f32]],
    tiles: &'a [&'a [f32]],
}

/// A chain of elementwise ops run as one step (see the module doc).
#[derive(Debug)]
pub(super) struct Chain {
    /// The values it reads, in the order `run` takes them.
    pub inputs: Vec<ValueId>,
    bcast: Vec<Bcast>,
    /// In graph order; the last one's result is the step's output.
    ops: Vec<ChainOp>,
    len: usize,
    /// The graph nodes it replaces, for profiles.
    pub nodes: Vec<usize>,
    /// Reductions that alone read the output: with any, the step writes their results
    /// (to `sink_values`) and never stores the output.
    sinks: Vec<Sink>,
    pub sink_values: Vec<ValueId>,
}

fn kind_of(st: &Step) -> Option<Kind> {
    match st {
        Step::BinaryF32(b) => Some(Kind::Bin(*b)),
        Step::UnaryF32(u) => Some(Kind::Un(*u)),
        _ => None,
    }
}

/// Replaces each tree of elementwise steps, where every op but the last is read only by
/// the next one at the same output shape, by one `Step::Chain` at its last node.
pub(super) fn fuse_chains(g: &Graph, steps: &mut [Step], outputs: &std::collections::HashSet<ValueId>) {
    let (readers, producer) = super::readers_and_producers(g);
    let shape = |i: usize| g.values[g.nodes[i].outputs[0]].shape.clone();
    // node i runs inside its one reader's chain
    let inner = |i: usize, steps: &[Step]| -> Option<usize> {
        kind_of(&steps[i])?;
        let o = g.nodes[i].outputs[0];
        let j = *readers[o].first()?;
        (readers[o].iter().all(|&r| r == j)
            && !outputs.contains(&o)
            && kind_of(&steps[j]).is_some()
            && shape(i).is_some()
            && shape(i) == shape(j))
        .then_some(j)
    };
    for root in 0..steps.len() {
        if kind_of(&steps[root]).is_none() || inner(root, steps).is_some() {
            continue;
        }
        // the tree under root, in graph order
        let mut members = vec![root];
        let mut k = 0;
        while k < members.len() {
            let m = members[k];
            for &v in &g.nodes[m].inputs {
                let p = producer[v];
                if p != usize::MAX && !members.contains(&p) && inner(p, steps) == Some(m) {
                    members.push(p);
                }
            }
            k += 1;
        }
        if members.len() < 2 {
            continue;
        }
        members.sort_unstable();
        let Some(out_shape) = shape(root).filter(|s| s.len() <= 8) else { continue };
        let mut inputs: Vec<ValueId> = Vec::new();
        let mut ops = Vec::with_capacity(members.len());
        for &m in &members {
            let Some(kind) = kind_of(&steps[m]) else { continue };
            let args = g.nodes[m]
                .inputs
                .iter()
                .map(|&v| match members.iter().position(|&p| p == producer[v]) {
                    Some(at) => Arg::Op(at),
                    None => Arg::In(inputs.iter().position(|&x| x == v).unwrap_or_else(|| {
                        inputs.push(v);
                        inputs.len() - 1
                    })),
                })
                .collect();
            ops.push(ChainOp { kind, args });
        }
        let Some(bcast) = inputs.iter().map(|&v| g.values[v].shape.as_ref().map(|s| Bcast::new(s, &out_shape))).collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        for &m in &members[..members.len() - 1] {
            steps[m] = Step::Fused;
        }
        let len = graph::numel(&out_shape);
        steps[root] = Step::Chain(Box::new(Chain { inputs, bcast, ops, len, nodes: members, sinks: Vec::new(), sink_values: Vec::new() }));
    }
}

impl Chain {
    /// `out` (the output, whole) from the inputs' data, in `self.inputs` order.
    pub fn run(&self, isa: Isa, xs: &[&[f32]], out: &mut [f32]) -> Result<(), String> {
        if out.len() < self.len || xs.len() != self.inputs.len() {
            return Err(format!("elementwise chain: {} inputs for {}, output {} for {}", xs.len(), self.inputs.len(), out.len(), self.len));
        }
        let out = &mut out[..self.len];
        let tiles: Vec<Vec<f32>> = self.bcast.iter().zip(xs).map(|(b, x)| b.tile(x)).collect();
        let tiles: Vec<&[f32]> = tiles.iter().map(|t| t.as_slice()).collect();
        let xs = Inputs { xs, tiles: &tiles };
        let blocks = |lo: usize, dst: &mut [f32], scratch: &mut Vec<f32>| {
            let per = self.ops.len() + self.inputs.len();
            scratch.resize(per * BLOCK, 0.0);
            for (b, d) in dst.chunks_mut(BLOCK).enumerate() {
                self.block(isa, &xs, lo + b * BLOCK, d, scratch);
            }
        };
        const TASK: usize = 16 * BLOCK;
        if self.len > 2 * TASK && rayon::current_num_threads() > 1 {
            out.par_chunks_mut(TASK).enumerate().for_each_init(Vec::new, |s, (t, d)| blocks(t * TASK, d, s));
        } else {
            blocks(0, out, &mut Vec::new());
        }
        Ok(())
    }

    /// Output elements `lo..lo + dst.len()`, compiled for the path's vector width.
    fn block(&self, isa: Isa, xs: &Inputs, lo: usize, dst: &mut [f32], scratch: &mut [f32]) {
        match isa {
            // SAFETY: the executor runs a path only where the CPU supports it (`Isa::supported`).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.block_avx512(isa, xs, lo, dst, scratch) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.block_avx2(isa, xs, lo, dst, scratch) },
            _ => self.block_any(isa, xs, lo, dst, scratch),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn block_avx512(&self, isa: Isa, xs: &Inputs, lo: usize, dst: &mut [f32], scratch: &mut [f32]) {
        self.block_any(isa, xs, lo, dst, scratch)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_avx2(&self, isa: Isa, xs: &Inputs, lo: usize, dst: &mut [f32], scratch: &mut [f32]) {
        self.block_any(isa, xs, lo, dst, scratch)
    }

    /// Output elements `lo..lo + dst.len()`: the inputs' blocks, then each op in turn.
    /// Elementwise IEEE operations without contraction: every vector width gives the same
    /// results.
    #[inline(always)]
    fn block_any(&self, isa: Isa, inputs: &Inputs, lo: usize, dst: &mut [f32], scratch: &mut [f32]) {
        let (xs, tiles) = (inputs.xs, inputs.tiles);
        let n = dst.len();
        let (ins, tmps) = scratch.split_at_mut(self.inputs.len() * BLOCK);
        // periodic inputs are read in place from their tiles
        let periodic = |i: usize| self.bcast[i].period().filter(|_| !tiles[i].is_empty());
        for (i, (b, x)) in self.bcast.iter().zip(xs).enumerate() {
            if !b.same && periodic(i).is_none() {
                b.gather(x, tiles[i], lo, &mut ins[i * BLOCK..i * BLOCK + n]);
            }
        }
        let last = self.ops.len() - 1;
        for (k, op) in self.ops.iter().enumerate() {
            let (done, rest) = tmps.split_at_mut(k * BLOCK);
            let d: &mut [f32] = if k == last { &mut *dst } else { &mut rest[..n] };
            let src = |a: Arg| -> &[f32] {
                match a {
                    Arg::In(i) if self.bcast[i].same => &xs[i][lo..lo + n],
                    Arg::In(i) if periodic(i).is_some() => {
                        let at = lo % periodic(i).unwrap_or(1);
                        &tiles[i][at..at + n]
                    }
                    Arg::In(i) => &ins[i * BLOCK..i * BLOCK + n],
                    Arg::Op(j) => &done[j * BLOCK..j * BLOCK + n],
                }
            };
            match (op.kind, op.args.as_slice()) {
                (Kind::Bin(b), &[p, q]) => binary(b, src(p), src(q), d),
                (Kind::Un(UnOp::Exp), &[p]) => simd::math::exp_into(isa, src(p), d),
                (Kind::Un(u), &[p]) => d.iter_mut().zip(src(p)).for_each(|(o, &v)| *o = graph::eval::un_f32(u, v)),
                _ => d.fill(f32::NAN),
            }
        }
    }
}

/// `d = a op b` on equal lengths, one loop per op so that each vectorises.
#[inline(always)]
fn binary(op: BinOp, a: &[f32], b: &[f32], d: &mut [f32]) {
    use BinOp::*;
    #[inline(always)]
    fn go(a: &[f32], b: &[f32], d: &mut [f32], f: impl Fn(f32, f32) -> f32) {
        d.iter_mut().zip(a).zip(b).for_each(|((o, &p), &q)| *o = f(p, q));
    }
    match op {
        Add => go(a, b, d, |p, q| p + q),
        Sub => go(a, b, d, |p, q| p - q),
        Mul => go(a, b, d, |p, q| p * q),
        Div => go(a, b, d, |p, q| p / q),
        Max => go(a, b, d, f32::max),
        Min => go(a, b, d, f32::min),
        SquaredDifference => go(a, b, d, |p, q| (p - q) * (p - q)),
        _ => go(a, b, d, |p, q| graph::eval::bin_f32(op, p, q)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element of `out`'s broadcast of `input`, the plain way.
    fn reference(x: &[f32], input: &[usize], out: &[usize]) -> Vec<f32> {
        let off = out.len() - input.len();
        (0..out.iter().product::<usize>())
            .map(|mut flat| {
                let mut idx = 0;
                let mut stride = 1;
                for i in (0..out.len()).rev() {
                    let c = flat % out[i];
                    flat /= out[i];
                    if i >= off && input[i - off] != 1 {
                        idx += c * stride;
                        stride *= input[i - off];
                    }
                }
                x[idx]
            })
            .collect()
    }

    #[test]
    fn broadcast_blocks_match_the_index_formula() {
        let out = [4, 5, 3, 7];
        for input in [
            vec![4, 5, 1, 7],
            vec![4, 5, 1, 1],
            vec![1, 1, 3, 7],
            vec![4, 5, 3, 1],
            vec![5, 1, 7],
            vec![1],
            vec![4, 1, 3, 1],
            vec![4, 5, 3, 7],
        ] {
            let x: Vec<f32> = (0..input.iter().product::<usize>()).map(|i| i as f32).collect();
            let want = reference(&x, &input, &out);
            let b = Bcast::new(&input, &out);
            for (lo, n) in [(0, want.len()), (3, 11), (17, 40), (100, 20), (want.len() - 1, 1)] {
                let mut got = vec![f32::NAN; n];
                if b.same {
                    got.copy_from_slice(&x[lo..lo + n]);
                } else {
                    b.gather(&x, &[], lo, &mut got);
                    assert_eq!(got, want[lo..lo + n], "{input:?} from {lo}, untiled");
                    if n <= BLOCK {
                        b.gather(&x, &b.tile(&x), lo, &mut got);
                    }
                }
                assert_eq!(got, want[lo..lo + n], "{input:?} from {lo}");
            }
        }
    }

    /// MoveNet's decoder chain, against the same ops one at a time on whole tensors.
    #[test]
    fn a_chain_matches_its_ops_run_one_at_a_time() {
        let out = vec![64usize, 64, 6, 17];
        let shapes: Vec<Vec<usize>> = vec![
            vec![64, 64, 1, 1],
            vec![1, 1, 6, 17],
            vec![64, 64, 1, 1],
            vec![1, 1, 6, 17],
            vec![],
            vec![],
            vec![64, 64, 1, 17],
            vec![64, 64, 6, 1],
        ];
        let data: Vec<Vec<f32>> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| (0..s.iter().product::<usize>()).map(|i| ((i * 7 + k * 3) % 23) as f32 * 0.37 - 2.0).collect())
            .collect();
        use Arg::*;
        let ops = vec![
            ChainOp { kind: Kind::Bin(BinOp::SquaredDifference), args: vec![In(0), In(1)] },
            ChainOp { kind: Kind::Bin(BinOp::SquaredDifference), args: vec![In(2), In(3)] },
            ChainOp { kind: Kind::Bin(BinOp::Add), args: vec![Op(0), Op(1)] },
            ChainOp { kind: Kind::Bin(BinOp::Mul), args: vec![In(4), Op(2)] },
            ChainOp { kind: Kind::Bin(BinOp::Div), args: vec![Op(3), In(5)] },
            ChainOp { kind: Kind::Un(UnOp::Exp), args: vec![Op(4)] },
            ChainOp { kind: Kind::Un(UnOp::Neg), args: vec![Op(5)] },
            ChainOp { kind: Kind::Bin(BinOp::Mul), args: vec![In(6), Op(6)] },
            ChainOp { kind: Kind::Bin(BinOp::Max), args: vec![Op(7), In(7)] },
        ];
        // one at a time, on whole tensors
        let mut vals: Vec<(Vec<f32>, Vec<usize>)> = Vec::new();
        for op in &ops {
            let arg = |a: Arg| match a {
                In(i) => (data[i].clone(), shapes[i].clone()),
                Op(j) => vals[j].clone(),
            };
            vals.push(match (op.kind, op.args.as_slice()) {
                (Kind::Bin(b), &[p, q]) => {
                    let ((x, sx), (y, sy)) = (arg(p), arg(q));
                    (graph::eval::binary_f32(b, &x, &sx, &y, &sy, &out), out.clone())
                }
                (Kind::Un(UnOp::Exp), &[p]) => {
                    let (x, sx) = arg(p);
                    let mut d = vec![0.0; x.len()];
                    simd::math::exp_into(Isa::Portable, &x, &mut d);
                    (d, sx)
                }
                (Kind::Un(u), &[p]) => {
                    let (x, sx) = arg(p);
                    (graph::eval::unary_f32(u, &x), sx)
                }
                _ => unreachable!(),
            });
        }
        let want = &vals.last().unwrap().0;
        let bcast = shapes.iter().map(|s| Bcast::new(s, &out)).collect();
        let c = Chain { inputs: (0..8).collect(), bcast, ops, len: want.len(), nodes: vec![], sinks: vec![], sink_values: vec![] };
        let xs: Vec<&[f32]> = data.iter().map(|d| d.as_slice()).collect();
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|i| i.supported()) {
            let mut got = vec![f32::NAN; want.len()];
            c.run(isa, &xs, &mut got).unwrap();
            // the same IEEE operations in the same order; exp's polynomial is the same on
            // every path, within rounding of its last steps
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "{isa:?} at {i}: {g} vs {w}");
            }
        }
    }
}
