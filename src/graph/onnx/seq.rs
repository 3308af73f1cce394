//! Sequence operators (opset 11 on). A sequence is held as its candidate tensors, each a
//! value of the graph, and an int64 value with their order; positions given at run time
//! (SequenceInsert, SequenceErase, SequenceAt) become slices and concatenations of that
//! order and an [`Op::Choose`] of the candidates. How many elements SplitToSequence makes
//! must be known when the model loads: from a constant split, or from the declared shape.
//! Sequences as graph inputs or outputs are not supported.

use super::proto::NodeProto;
use super::*;

#[derive(Clone, Debug)]
pub(super) struct Seq {
    items: Vec<ValueId>,
    /// int64 [len]: indices into `items`, in sequence order
    order: ValueId,
}

impl Builder<'_> {
    fn seq_in(&self, n: &NodeProto, i: usize) -> Result<Seq> {
        let s = n.input.get(i).map(|s| s.as_str()).unwrap_or("");
        self.seqs.get(s).cloned().ok_or_else(|| self.err(n, format!("input {i} ('{s}') is not a sequence")))
    }

    fn seq_out(&mut self, n: &NodeProto, s: Seq) {
        if let Some(o) = n.output.first() {
            self.seqs.insert(o.clone(), s);
        }
    }

    fn i64s(&mut self, name: String, v: Vec<i64>) -> ValueId {
        self.konst(name, Tensor::i64(vec![v.len()], v))
    }

    /// `order[a..b]`, the bounds int64 [1] values.
    fn slice_order(&mut self, name: String, order: ValueId, a: ValueId, b: ValueId) -> ValueId {
        self.emit(name, Op::Slice, vec![order, a, b], 1)[0]
    }

    fn concat0(&mut self, name: String, mut parts: Vec<ValueId>) -> ValueId {
        parts.push(self.konst(format!("{name}/axis"), Tensor::i64(vec![], vec![0])));
        self.emit(name, Op::Concat, parts, 1)[0]
    }

    /// A scalar position as int64 [1].
    fn pos1(&mut self, name: String, pos: ValueId) -> ValueId {
        let p = self.emit(format!("{name}/i64"), Op::Cast(DType::I64), vec![pos], 1)[0];
        let one = self.i64s(format!("{name}/shape"), vec![1]);
        self.emit(name, Op::Reshape { copy_zero: false }, vec![p, one], 1)[0]
    }

    /// Converts a sequence operator; `Ok(false)`: not one.
    pub(super) fn sequence_op(&mut self, n: &NodeProto) -> NodeResult {
        let name = node_name(n);
        match n.op_type() {
            "SequenceEmpty" => {
                let order = self.i64s(format!("{name}/order"), vec![]);
                self.seq_out(n, Seq { items: vec![], order });
            }
            "SequenceConstruct" => {
                let items: Vec<ValueId> = (0..n.input.len()).map(|i| self.req(n, i)).collect::<Result<_>>()?;
                let order = self.i64s(format!("{name}/order"), (0..items.len() as i64).collect());
                self.seq_out(n, Seq { items, order });
            }
            "SequenceInsert" => {
                let mut s = self.seq_in(n, 0)?;
                let t = self.req(n, 1)?;
                let k = self.i64s(format!("{name}/new"), vec![s.items.len() as i64]);
                s.items.push(t);
                s.order = match self.input(n, 2)? {
                    None => self.concat0(format!("{name}/order"), vec![s.order, k]),
                    Some(pos) => {
                        // a position in [-len, len]: Slice counts negative bounds from the end
                        let p = self.pos1(format!("{name}/pos"), pos);
                        let (zero, end) = (self.i64s(format!("{name}/zero"), vec![0]), self.i64s(format!("{name}/end"), vec![i64::MAX]));
                        let head = self.slice_order(format!("{name}/head"), s.order, zero, p);
                        let tail = self.slice_order(format!("{name}/tail"), s.order, p, end);
                        self.concat0(format!("{name}/order"), vec![head, k, tail])
                    }
                };
                self.seq_out(n, s);
            }
            "SequenceErase" => {
                let mut s = self.seq_in(n, 0)?;
                let pos = match self.input(n, 1)? {
                    Some(p) => self.pos1(format!("{name}/pos"), p),
                    None => self.i64s(format!("{name}/pos"), vec![-1]),
                };
                // position in [-len, len - 1] to [0, len): pos - floor(pos / len) * len
                let len = self.emit(format!("{name}/len"), Op::Size, vec![s.order], 1)[0];
                let len = self.emit(format!("{name}/len64"), Op::Cast(DType::I64), vec![len], 1)[0];
                let q = self.emit(format!("{name}/q"), Op::Binary(BinOp::FloorDiv), vec![pos, len], 1)[0];
                let ql = self.emit(format!("{name}/ql"), Op::Binary(BinOp::Mul), vec![q, len], 1)[0];
                let p = self.emit(format!("{name}/p"), Op::Binary(BinOp::Sub), vec![pos, ql], 1)[0];
                let one = self.i64s(format!("{name}/one"), vec![1]);
                let p1 = self.emit(format!("{name}/p1"), Op::Binary(BinOp::Add), vec![p, one], 1)[0];
                let (zero, end) = (self.i64s(format!("{name}/zero"), vec![0]), self.i64s(format!("{name}/end"), vec![i64::MAX]));
                let head = self.slice_order(format!("{name}/head"), s.order, zero, p);
                let tail = self.slice_order(format!("{name}/tail"), s.order, p1, end);
                s.order = self.concat0(format!("{name}/order"), vec![head, tail]);
                self.seq_out(n, s);
            }
            "SequenceAt" => {
                let s = self.seq_in(n, 0)?;
                if s.items.is_empty() {
                    return Err(self.err(n, "SequenceAt on an empty sequence"));
                }
                let pos = self.req(n, 1)?;
                let idx = self.emit(format!("{name}/index"), Op::Gather { axis: 0 }, vec![s.order, pos], 1)[0];
                let mut inputs = vec![idx];
                inputs.extend(&s.items);
                self.emit_final(n, Op::Choose, inputs);
            }
            "SequenceLength" => {
                let s = self.seq_in(n, 0)?;
                let len = self.emit(format!("{name}/len"), Op::Size, vec![s.order], 1)[0];
                self.emit_final(n, Op::Cast(DType::I64), vec![len]);
            }
            "ConcatFromSequence" => {
                let s = self.seq_in(n, 0)?;
                let order = self
                    .const_of(s.order)
                    .and_then(|t| t.to_i64_vec())
                    .ok_or_else(|| self.err(n, "the sequence's order depends on run-time positions; ConcatFromSequence needs it fixed"))?;
                let axis = ai(n, "axis", 0);
                let new_axis = ai(n, "new_axis", 0) != 0;
                let mut parts = Vec::with_capacity(order.len() + 1);
                for (k, &i) in order.iter().enumerate() {
                    let v = s.items[i as usize];
                    parts.push(if new_axis {
                        self.emit(format!("{name}/u{k}"), Op::Unsqueeze { axes: vec![axis] }, vec![v], 1)[0]
                    } else {
                        v
                    });
                }
                if parts.is_empty() {
                    return Err(self.err(n, "ConcatFromSequence of an empty sequence"));
                }
                parts.push(self.scalar_i64(n, "axis", axis));
                self.emit_final(n, Op::Concat, parts);
            }
            "SplitToSequence" => self.split_to_sequence(n)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn split_to_sequence(&mut self, n: &NodeProto) -> Result<()> {
        let name = node_name(n);
        let x = self.req(n, 0)?;
        let axis = ai(n, "axis", 0);
        let keepdims = ai(n, "keepdims", 1) != 0;
        let split = self.input(n, 1)?;
        let declared_dim = || -> Option<usize> {
            let d = self.declared.get(&x)?;
            let a = if axis < 0 { axis + d.len() as i64 } else { axis };
            match d.get(usize::try_from(a).ok()?)? {
                Dim::Fixed(v) => Some(*v),
                Dim::Dynamic(_) => None,
            }
        };
        let need_dim =
            |b: &Self| declared_dim().ok_or_else(|| b.err(n, "the split axis must have a declared size (or give a constant split)"));
        // bounds of each piece: constant (start, end) or run-time int64 [1] values
        enum Bounds {
            Fixed(Vec<(i64, i64)>),
            Run(Vec<(ValueId, ValueId)>),
        }
        let bounds = match split.map(|v| (v, self.const_of(v).and_then(|t| t.to_i64_vec().map(|s| (t.rank(), s))))) {
            None => Bounds::Fixed((0..need_dim(self)? as i64).map(|i| (i, i + 1)).collect()),
            Some((_, Some((0, s)))) => {
                let (dim, step) = (need_dim(self)? as i64, s[0].max(1));
                Bounds::Fixed((0..dim).step_by(step as usize).map(|a| (a, (a + step).min(dim))).collect())
            }
            Some((_, Some((_, sizes)))) => {
                let mut a = 0;
                Bounds::Fixed(
                    sizes
                        .iter()
                        .map(|&k| {
                            a += k;
                            (a - k, a)
                        })
                        .collect(),
                )
            }
            Some((v, None)) => {
                let len = match self.declared.get(&v).map(|d| d.as_slice()) {
                    Some([Dim::Fixed(l)]) => *l,
                    _ => return Err(self.err(n, "a run-time split must be 1-D with a declared length")),
                };
                let split64 = self.emit(format!("{name}/split64"), Op::Cast(DType::I64), vec![v], 1)[0];
                let zero = self.i64s(format!("{name}/zero"), vec![0]);
                let all = self.i64s(format!("{name}/reduce_all"), vec![0]);
                let mut b = Vec::with_capacity(len);
                let mut start = zero;
                for i in 0..len {
                    let upto = self.i64s(format!("{name}/upto{i}"), vec![i as i64 + 1]);
                    let head = self.slice_order(format!("{name}/head{i}"), split64, zero, upto);
                    let end = self.emit(format!("{name}/end{i}"), Op::Reduce { op: ReduceOp::Sum, keep_dims: true }, vec![head, all], 1)[0];
                    b.push((start, end));
                    start = end;
                }
                Bounds::Run(b)
            }
        };
        let ax = self.i64s(format!("{name}/axis"), vec![axis]);
        let pairs: Vec<(ValueId, ValueId)> = match bounds {
            Bounds::Fixed(v) => v
                .iter()
                .enumerate()
                .map(|(i, &(a, b))| (self.i64s(format!("{name}/s{i}"), vec![a]), self.i64s(format!("{name}/e{i}"), vec![b])))
                .collect(),
            Bounds::Run(v) => v,
        };
        let squeeze = !keepdims && split.is_none();
        let items: Vec<ValueId> = pairs
            .into_iter()
            .enumerate()
            .map(|(i, (a, b))| {
                let p = self.emit(format!("{name}/piece{i}"), Op::Slice, vec![x, a, b, ax], 1)[0];
                if squeeze {
                    self.emit(format!("{name}/squeeze{i}"), Op::Squeeze { axes: vec![axis] }, vec![p], 1)[0]
                } else {
                    p
                }
            })
            .collect();
        let order = self.i64s(format!("{name}/order"), (0..items.len() as i64).collect());
        self.seq_out(n, Seq { items, order });
        Ok(())
    }
}
