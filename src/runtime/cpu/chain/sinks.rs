//! Reductions folded into an elementwise chain (`Sink`): the chain's output is never stored.

use super::{Chain, Inputs, BLOCK};
use crate::graph::{DType, Graph, ReduceOp, Tensor, ValueId};
#[cfg(target_arch = "x86_64")]
use crate::runtime::cpu::simd::vec::{Avx2, Avx512};
use crate::runtime::cpu::simd::vec::{Portable, Simd};
use crate::runtime::cpu::{simd::Isa, Step};
use rayon::prelude::*;

/// A reduction that reads a chain's output (directly or through reshapes), folded into each
/// block as the chain makes it. MoveNet's decoder takes a ReduceMax over the 6 people and an
/// ArgMax over the 4096 pixels of its chain's `[64, 64, 6, 17]`: apart, they read its 1.7 MB
/// back from L3 twice.
#[derive(Debug)]
pub(super) struct Sink {
    /// Max or Min; None for ArgMax (the first greatest), to `dtype`.
    op: Option<ReduceOp>,
    dtype: DType,
    /// `[outer, r, inner]` over the chain's output elements.
    dims: [usize; 3],
    shape: Vec<usize>,
}

/// The least common multiple of the sinks' rows (`inner`): blocks hold whole rows of each.
fn unit<'a>(sinks: impl Iterator<Item = &'a Sink>) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    sinks.fold(1, |u, s| u / gcd(u, s.dims[2]) * s.dims[2])
}

/// Moves the Max, Min and ArgMax reductions that alone read a chain's output (directly or
/// through views) into the chain, as its sinks.
pub(in crate::runtime::cpu) fn fuse_sinks(g: &Graph, steps: &mut [Step], outputs: &std::collections::HashSet<ValueId>) {
    let (readers, _) = crate::runtime::cpu::readers_and_producers(g);
    for root in 0..steps.len() {
        let Step::Chain(c) = &steps[root] else { continue };
        let (mut found, mut views, mut ok) = (Vec::new(), Vec::new(), true);
        let mut stack = vec![g.nodes[root].outputs[0]];
        while let Some(v) = stack.pop() {
            ok &= !outputs.contains(&v);
            for &r in &readers[v] {
                // read once, as the data operand
                let n = &g.nodes[r];
                let first = n.inputs[0] == v && n.inputs.iter().filter(|&&i| i == v).count() == 1;
                let shape = || g.values[n.outputs[0]].shape.clone().unwrap_or_default();
                match &steps[r] {
                    Step::View if first => {
                        views.push(r);
                        stack.push(n.outputs[0]);
                    }
                    Step::ReduceF32 { op: op @ (ReduceOp::Max | ReduceOp::Min), dims } if first => {
                        found.push((r, Sink { op: Some(*op), dtype: DType::F32, dims: *dims, shape: shape() }))
                    }
                    Step::ArgMaxF32 { dims, dtype } if first => {
                        found.push((r, Sink { op: None, dtype: *dtype, dims: *dims, shape: shape() }))
                    }
                    _ => ok = false,
                }
            }
        }
        // (`Acc` holds ArgMax rows as f32, exact up to 2^24)
        if !ok
            || found.is_empty()
            || unit(found.iter().map(|(_, s)| s)) > BLOCK
            || found.iter().any(|(_, s)| s.dims[1] > 1 << 24)
            || found.iter().any(|(_, s)| s.dims.iter().product::<usize>() != c.len)
        {
            continue;
        }
        for &r in views.iter().chain(found.iter().map(|(r, _)| r)) {
            steps[r] = Step::Fused;
        }
        if let Step::Chain(c) = &mut steps[root] {
            c.nodes.extend(found.iter().map(|(r, _)| *r));
            c.sink_values = found.iter().map(|(r, _)| g.nodes[*r].outputs[0]).collect();
            c.sinks = found.into_iter().map(|(_, s)| s).collect();
        }
    }
}

/// One task's share of a sink: output rows from `o0`, with the indices of an ArgMax (-1
/// where the task saw no greater value).
struct Acc {
    o0: usize,
    vals: Vec<f32>,
    /// as f32 (exact: sinks have at most 2^24 rows), so that they vectorise with the values
    idx: Vec<f32>,
}

impl Acc {
    /// For output elements `lo..hi`.
    fn new(s: &Sink, lo: usize, hi: usize) -> Acc {
        let [_, r, inner] = s.dims;
        let (o0, o1) = (lo / (r * inner), (hi - 1) / (r * inner) + 1);
        let n = (o1 - o0) * inner;
        let init = if s.op == Some(ReduceOp::Min) { f32::INFINITY } else { f32::NEG_INFINITY };
        Acc { o0, vals: vec![init; n], idx: if s.op.is_none() { vec![-1.0; n] } else { Vec::new() } }
    }

    /// Folds in output elements `lo..lo + x.len()`, whole rows of the sink's `inner`. As
    /// `graph::eval`'s reductions: Max and Min skip NaN; ArgMax starts at row 0's values
    /// (a NaN there stays) and takes a later row only where it is greater.
    fn fold(&mut self, isa: Isa, s: &Sink, lo: usize, x: &[f32]) {
        // SAFETY: the executor runs a path only where the CPU supports it; `Acc::new` sized
        // the rows for the task's elements, which hold `lo..lo + x.len()`.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => self.fold_avx512(s, lo, x),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => self.fold_avx2(s, lo, x),
                _ => self.fold_any::<Portable>(s, lo, x),
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn fold_avx512(&mut self, s: &Sink, lo: usize, x: &[f32]) {
        self.fold_any::<Avx512>(s, lo, x)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fold_avx2(&mut self, s: &Sink, lo: usize, x: &[f32]) {
        self.fold_any::<Avx2>(s, lo, x)
    }

    /// The rows of one output row at a time, a vector of columns at a time, the running
    /// result in registers across the rows (stored once, not reloaded per row).
    #[inline(always)]
    unsafe fn fold_any<S: Simd>(&mut self, s: &Sink, lo: usize, x: &[f32]) {
        let [_, r, inner] = s.dims;
        let rows = x.len() / inner;
        let (mut o, mut q, mut k) = (lo / (r * inner), (lo / inner) % r, 0);
        let (ld, st) = (
            |p: *const f32, n: usize| if n == S::L { S::load(p) } else { S::load_part(p, n) },
            |p: *mut f32, v: S::V, n: usize| if n == S::L { S::store(p, v) } else { S::store_part(p, v, n) },
        );
        while k < rows {
            let run = (r - q).min(rows - k);
            let at = (o - self.o0) * inner;
            let (acc, src) = (self.vals.as_mut_ptr().add(at), x.as_ptr().add(k * inner));
            for i0 in (0..inner).step_by(S::L) {
                let n = (inner - i0).min(S::L);
                let row = |j: usize| ld(src.add(j * inner + i0), n);
                match s.op {
                    Some(op) => {
                        // the second operand wins where either is NaN: the running result,
                        // never NaN
                        let mut m = ld(acc.add(i0), n);
                        for j in 0..run {
                            m = if op == ReduceOp::Min { S::min(row(j), m) } else { S::max(row(j), m) };
                        }
                        st(acc.add(i0), m, n);
                    }
                    None => {
                        let idx = self.idx.as_mut_ptr().add(at + i0);
                        let (mut b, mut bi, j0) = if q == 0 { (row(0), S::zero(), 1) } else { (ld(acc.add(i0), n), ld(idx, n), 0) };
                        for j in j0..run {
                            let v = row(j);
                            bi = S::select_gt(v, b, S::splat((q + j) as f32), bi);
                            b = S::select_gt(v, b, v, b);
                        }
                        st(acc.add(i0), b, n);
                        st(idx, bi, n);
                    }
                }
            }
            (k, q) = (k + run, q + run);
            if q == r {
                (q, o) = (0, o + 1);
            }
        }
    }
}

impl Chain {
    /// The sinks' results (`sinks`), from the inputs' data in `self.inputs` order, each
    /// block folded into every sink while it is in cache. Tasks of whole rows fold into
    /// their own rows, merged in order as `graph::eval` merges its parallel ranges.
    pub fn run_sinks(&self, isa: Isa, xs: &[&[f32]]) -> Result<Vec<Tensor>, String> {
        if xs.len() != self.inputs.len() || self.sinks.is_empty() {
            return Err(format!("elementwise chain: {} inputs for {}, {} sinks", xs.len(), self.inputs.len(), self.sinks.len()));
        }
        let unit = unit(self.sinks.iter());
        let blk = BLOCK / unit * unit;
        let task = 16 * blk;
        let tiles: Vec<Vec<f32>> = self.bcast.iter().zip(xs).map(|(b, x)| b.tile(x)).collect();
        let tiles: Vec<&[f32]> = tiles.iter().map(|t| t.as_slice()).collect();
        let xs = Inputs { xs, tiles: &tiles };
        let part = |(scratch, buf): &mut (Vec<f32>, Vec<f32>), t: usize| -> Vec<Acc> {
            let (lo, hi) = (t * task, ((t + 1) * task).min(self.len));
            let mut accs: Vec<Acc> = self.sinks.iter().map(|s| Acc::new(s, lo, hi)).collect();
            scratch.resize((self.ops.len() + self.inputs.len()) * BLOCK, 0.0);
            buf.resize(blk, 0.0);
            for b0 in (lo..hi).step_by(blk) {
                let n = blk.min(hi - b0);
                self.block(isa, &xs, b0, &mut buf[..n], scratch);
                for (s, a) in self.sinks.iter().zip(&mut accs) {
                    a.fold(isa, s, b0, &buf[..n]);
                }
            }
            accs
        };
        let tasks = self.len.div_ceil(task);
        let parts: Vec<Vec<Acc>> = if tasks > 2 && rayon::current_num_threads() > 1 {
            (0..tasks).into_par_iter().map_init(Default::default, part).collect()
        } else {
            let mut s = Default::default();
            (0..tasks).map(|t| part(&mut s, t)).collect()
        };
        let mut res = Vec::with_capacity(self.sinks.len());
        for (k, s) in self.sinks.iter().enumerate() {
            let [outer, _, inner] = s.dims;
            let mut all = Acc::new(s, 0, outer * s.dims[1] * inner);
            for a in parts.iter().map(|p| &p[k]) {
                let at = a.o0 * inner;
                let (vals, idx) = (&mut all.vals[at..at + a.vals.len()], all.idx.get_mut(at..at + a.idx.len()).unwrap_or_default());
                match s.op {
                    Some(ReduceOp::Min) => vals.iter_mut().zip(&a.vals).for_each(|(v, &x)| *v = v.min(x)),
                    Some(_) => vals.iter_mut().zip(&a.vals).for_each(|(v, &x)| *v = v.max(x)),
                    None => {
                        for (((v, i), &x), &j) in vals.iter_mut().zip(idx.iter_mut()).zip(&a.vals).zip(&a.idx) {
                            if j >= 0.0 && (*i < 0.0 || x > *v) {
                                (*v, *i) = (x, j);
                            }
                        }
                    }
                }
            }
            res.push(match s.op {
                Some(_) => Tensor::f32(s.shape.clone(), all.vals),
                None => Tensor::i64(s.shape.clone(), all.idx.into_iter().map(|i| i as i64).collect()).cast(s.dtype),
            });
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Arg, Bcast, ChainOp, Kind};
    use super::*;
    use crate::graph::BinOp;

    /// Max, Min and ArgMax sinks (within and across tasks, with ties, NaN and -inf) give
    /// what `graph::eval`'s reductions give on the stored output, on 1 and 2 threads.
    #[test]
    fn sinks_match_the_reductions_of_the_stored_output() {
        let out = vec![48usize, 40, 6, 17];
        let len: usize = out.iter().product();
        // few distinct values (ties), NaN at an ArgMax's row 0 and elsewhere, and -inf
        let mut x: Vec<f32> = (0..len).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        for i in [0, 5, 101, 777, 20_000, len - 1] {
            x[i] = f32::NAN;
        }
        x[3000] = f32::NEG_INFINITY;
        let y: Vec<f32> = (0..102).map(|i| 1.0 + (i % 3) as f32).collect();
        let sink = |op, dims: [usize; 3]| Sink { op, dtype: DType::I64, dims, shape: vec![dims[0] * dims[2]] };
        let sinks = vec![
            sink(Some(ReduceOp::Max), [48 * 40, 6, 17]),
            sink(None, [1, 48 * 40, 102]),
            sink(None, [48, 40, 102]),
            sink(Some(ReduceOp::Min), [1, 48 * 40 * 6, 17]),
        ];
        let c = Chain {
            inputs: vec![0, 1],
            bcast: vec![Bcast::new(&out, &out), Bcast::new(&[1, 1, 6, 17], &out)],
            ops: vec![ChainOp { kind: Kind::Bin(BinOp::Mul), args: vec![Arg::In(0), Arg::In(1)] }],
            len,
            nodes: vec![],
            sinks,
            sink_values: vec![0, 1, 2, 3],
        };
        let mut full = vec![0f32; len];
        c.run(Isa::Portable, &[&x, &y], &mut full).unwrap();
        let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|i| i.supported()) {
                let got = pool.install(|| c.run_sinks(isa, &[&x, &y])).unwrap();
                for (s, t) in c.sinks.iter().zip(&got) {
                    let [o, r, i] = s.dims;
                    match s.op {
                        Some(op) => {
                            let want = crate::graph::eval::reduce_f32(&full, o, r, i, op);
                            let got = t.as_f32().unwrap();
                            assert!(want.iter().zip(got).all(|(&a, &b)| same(a, b)), "{op:?} {:?} on {threads} threads", s.dims);
                        }
                        None => {
                            let want = crate::graph::eval::argmax_f32(&full, o, r, i);
                            assert_eq!(t.to_i64_vec().unwrap(), want, "ArgMax {:?} on {threads} threads", s.dims);
                        }
                    }
                }
            }
        }
    }
}
