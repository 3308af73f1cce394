//! Elementwise reference kernels: broadcasting binary ops, unary ops, casts' arithmetic.

use super::*;

macro_rules! zip_num {
    ($a:expr, $b:expr, $sa:expr, $sb:expr, $out:expr, |$x:ident, $y:ident| $e:expr) => {{
        if $sa == $sb {
            // same shapes (MoveNet's masks): no offset tables
            zip_same!($a, $b, |$x, $y| $e)
        } else {
            zip_offsets!($a, $b, $sa, $sb, $out, |$x, $y| $e)
        }
    }};
}

macro_rules! zip_same {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $e:expr) => {{
        $a.iter().zip($b.iter()).map(|(&$x, &$y)| $e).collect::<Vec<_>>()
    }};
}

macro_rules! zip_offsets {
    ($a:expr, $b:expr, $sa:expr, $sb:expr, $out:expr, |$x:ident, $y:ident| $e:expr) => {{
        let offs = broadcast_offsets($out, &[$sa, $sb]);
        offs[0]
            .iter()
            .zip(&offs[1])
            .map(|(&i, &j)| {
                let $x = $a[i];
                let $y = $b[j];
                $e
            })
            .collect::<Vec<_>>()
    }};
}

/// Broadcasting binary op. Both inputs are promoted to the first input's dtype.
pub fn binary(op: BinOp, a: &Tensor, b: &Tensor) -> R<Tensor> {
    let out = broadcast_shapes(&[&a.shape, &b.shape])?;
    let b = if b.dtype() != a.dtype() { b.cast(a.dtype()) } else { b.clone() };
    let (sa, sb) = (&a.shape[..], &b.shape[..]);
    use BinOp::*;
    let cmp = matches!(op, Equal | Less | LessEqual | Greater | GreaterEqual);
    if cmp {
        let x = a.to_f64_vec();
        let y = b.to_f64_vec();
        let v = zip_num!(x, y, sa, sb, &out, |p, q| match op {
            Equal => p == q,
            Less => p < q,
            LessEqual => p <= q,
            Greater => p > q,
            _ => p >= q,
        });
        return Ok(Tensor::new(out, TensorData::Bool(v)));
    }
    let data = match (&a.data, &b.data) {
        (TensorData::F32(x), TensorData::F32(y)) => TensorData::F32(binary_f32(op, x, sa, y, sb, &out)),
        (TensorData::F16(x), TensorData::F16(y)) => {
            TensorData::F16(zip_num!(x, y, sa, sb, &out, |p, q| f16::from_f32(bin_f32(op, p.to_f32(), q.to_f32()))))
        }
        (TensorData::I32(x), TensorData::I32(y)) => {
            TensorData::I32(zip_num!(x, y, sa, sb, &out, |p, q| bin_i64(op, p as i64, q as i64) as i32))
        }
        (TensorData::I64(x), TensorData::I64(y)) => TensorData::I64(zip_num!(x, y, sa, sb, &out, |p, q| bin_i64(op, p, q))),
        (TensorData::U8(x), TensorData::U8(y)) => {
            TensorData::U8(zip_num!(x, y, sa, sb, &out, |p, q| bin_i64(op, p as i64, q as i64) as u8))
        }
        (TensorData::Bool(x), TensorData::Bool(y)) => TensorData::Bool(zip_num!(x, y, sa, sb, &out, |p, q| match op {
            And | Mul | Min => p && q,
            Or | Add | Max => p || q,
            _ => p != q,
        })),
        _ => return Err(format!("unsupported operand types {} and {}", a.dtype(), b.dtype())),
    };
    Ok(Tensor::new(out, data))
}

/// Broadcasting f32 binary op: rows of the innermost dim, split across threads when large.
pub fn binary_f32(op: BinOp, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], out: &[usize]) -> Vec<f32> {
    let mut res = vec![0f32; numel(out)];
    binary_f32_op_into(op, a, sa, b, sb, out, &mut res);
    res
}

/// [`binary_f32`] into `dst` (`numel(out)` long).
pub fn binary_f32_op_into(op: BinOp, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], out: &[usize], dst: &mut [f32]) {
    use BinOp::*;
    // one loop per op, so the op is not matched per element
    match op {
        Add => binary_f32_into(|p, q| p + q, a, sa, b, sb, out, dst),
        Sub => binary_f32_into(|p, q| p - q, a, sa, b, sb, out, dst),
        Mul => binary_f32_into(|p, q| p * q, a, sa, b, sb, out, dst),
        Div => binary_f32_into(|p, q| p / q, a, sa, b, sb, out, dst),
        Max => binary_f32_into(|p: f32, q| p.max(q), a, sa, b, sb, out, dst),
        Min => binary_f32_into(|p: f32, q| p.min(q), a, sa, b, sb, out, dst),
        SquaredDifference => binary_f32_into(|p, q| (p - q) * (p - q), a, sa, b, sb, out, dst),
        _ => binary_f32_into(|p, q| bin_f32(op, p, q), a, sa, b, sb, out, dst),
    }
}

/// Broadcasting binary kernel for one op (`f`), with any output element type. Dimensions that broadcast alike are merged first
/// (`[64,64,17] x [1,1,17]` is `[4096,17] x [1,17]`), then rows of the innermost merged
/// dimension are walked with an odometer, split across threads when large.
pub fn binary_f32_with<T, F>(f: F, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], out: &[usize]) -> Vec<T>
where
    T: Copy + Default + Send + Sync,
    F: Fn(f32, f32) -> T + Sync,
{
    let mut res = vec![T::default(); numel(out)];
    binary_f32_into(f, a, sa, b, sb, out, &mut res);
    res
}

/// [`binary_f32_with`] into `dst` (`numel(out)` long).
pub fn binary_f32_into<T, F>(f: F, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], out: &[usize], dst: &mut [T])
where
    T: Copy + Send + Sync,
    F: Fn(f32, f32) -> T + Sync,
{
    use rayon::prelude::*;
    let n = numel(out);
    let dst = &mut dst[..n];
    if sa == sb {
        let g = |((o, &p), &q): ((&mut T, &f32), &f32)| *o = f(p, q);
        if n > PAR_MIN {
            dst.par_iter_mut().zip(a).zip(b).for_each(g)
        } else {
            dst.iter_mut().zip(a).zip(b).for_each(g)
        }
        return;
    }
    if n == 0 {
        return;
    }
    let rank = out.len().max(1);
    let full: Vec<usize> = if out.is_empty() { vec![1] } else { out.to_vec() };
    let bstrides = |s: &[usize]| {
        let st = strides(s);
        let off = rank - s.len();
        let mut v = vec![0usize; rank];
        for i in 0..s.len() {
            if s[i] != 1 {
                v[off + i] = st[i];
            }
        }
        v
    };
    let (ta, tb) = (bstrides(sa), bstrides(sb));
    // merge dimensions (innermost first) whose strides continue each other in both inputs
    let (mut dims, mut da, mut db) = (Vec::with_capacity(rank), Vec::with_capacity(rank), Vec::with_capacity(rank));
    for d in (0..rank).rev() {
        if full[d] == 1 {
            continue;
        }
        match (dims.last_mut(), da.last(), db.last()) {
            (Some(sz), Some(&xa), Some(&xb)) if ta[d] == xa * *sz && tb[d] == xb * *sz => *sz *= full[d],
            _ => {
                dims.push(full[d]);
                da.push(ta[d]);
                db.push(tb[d]);
            }
        }
    }
    if dims.is_empty() {
        dst[0] = f(a[0], b[0]);
        return;
    }
    dims.reverse();
    da.reverse();
    db.reverse();
    let r = dims.len();
    let inner = dims[r - 1];
    let (ia, ib) = (da[r - 1], db[r - 1]);
    let rows = n / inner;
    // a short row (input normalisation's [1,1,1,3]) broadcast against a contiguous tensor:
    // tile the row into a longer one, and walk the tensor in chunks of it
    let contiguous = |st: &[usize]| (0..r).all(|d| st[d] == dims[d + 1..].iter().product::<usize>());
    let vector = |st: &[usize]| st[r - 1] == 1 && st[..r - 1].iter().all(|&x| x == 0);
    if inner < 64 && r >= 2 && ((vector(&db) && contiguous(&da)) || (vector(&da) && contiguous(&db))) {
        let k = (1..=(2048 / inner).min(rows)).rev().find(|k| rows.is_multiple_of(*k)).unwrap_or(1);
        let row_b = vector(&db);
        let tile: Vec<f32> = (if row_b { &b[..inner] } else { &a[..inner] }).iter().copied().cycle().take(k * inner).collect();
        let full = if row_b { a } else { b };
        let chunk = |(o, x): (&mut [T], &[f32])| {
            if row_b {
                o.iter_mut().zip(x).zip(&tile).for_each(|((o, &p), &q)| *o = f(p, q))
            } else {
                o.iter_mut().zip(x).zip(&tile).for_each(|((o, &q), &p)| *o = f(p, q))
            }
        };
        if n > PAR_MIN {
            dst.par_chunks_mut(k * inner).zip(full.par_chunks(k * inner)).for_each(chunk);
        } else {
            dst.chunks_mut(k * inner).zip(full.chunks(k * inner)).for_each(chunk);
        }
        return;
    }
    // short contiguous rows where one input repeats its row along the next dimension
    // (MoveNet's `[64,64,1,17] x [64,64,6,17]`): that input's row is tiled into a block
    // as long as the other's, and each block is one loop instead of many short ones
    if r >= 2 && ia == 1 && ib == 1 && inner < 64 {
        let (d2, a2, b2) = (dims[r - 2], da[r - 2], db[r - 2]);
        let a_rep = a2 == 0 && b2 == inner;
        if a_rep || (b2 == 0 && a2 == inner) {
            let block = d2 * inner;
            let blocks = |b0: usize, dst: &mut [T]| {
                let mut tile = vec![0f32; block];
                for (i, out) in dst.chunks_mut(block).enumerate() {
                    let (mut rem, mut oa, mut ob) = (b0 + i, 0, 0);
                    for d in (0..r - 2).rev() {
                        let x = rem % dims[d];
                        rem /= dims[d];
                        oa += x * da[d];
                        ob += x * db[d];
                    }
                    let (rep, o) = if a_rep { (&a[oa..oa + inner], ob) } else { (&b[ob..ob + inner], oa) };
                    for t in tile.chunks_mut(inner) {
                        t.copy_from_slice(rep);
                    }
                    let full = if a_rep { &b[o..o + block] } else { &a[o..o + block] };
                    if a_rep {
                        out.iter_mut().zip(&tile).zip(full).for_each(|((o, &p), &q)| *o = f(p, q));
                    } else {
                        out.iter_mut().zip(full).zip(&tile).for_each(|((o, &p), &q)| *o = f(p, q));
                    }
                }
            };
            let count = n / block;
            if n > PAR_MIN {
                let per = count.div_ceil(rayon::current_num_threads().max(1) * 4).max(1);
                dst.par_chunks_mut(per * block).enumerate().for_each(|(c, d)| blocks(c * per, d));
            } else {
                blocks(0, dst);
            }
            return;
        }
    }
    // rows r0.. into dst, odometer over the outer dims
    let run = |r0: usize, dst: &mut [T]| {
        let mut idx = vec![0usize; r - 1];
        let (mut oa, mut ob) = (0usize, 0usize);
        let mut rem = r0;
        for d in (0..r - 1).rev() {
            idx[d] = rem % dims[d];
            rem /= dims[d];
            oa += idx[d] * da[d];
            ob += idx[d] * db[d];
        }
        for row in dst.chunks_mut(inner) {
            match (ia, ib) {
                (1, 1) => row.iter_mut().zip(&a[oa..oa + inner]).zip(&b[ob..ob + inner]).for_each(|((o, &p), &q)| *o = f(p, q)),
                (1, 0) => {
                    let q = b[ob];
                    row.iter_mut().zip(&a[oa..oa + inner]).for_each(|(o, &p)| *o = f(p, q))
                }
                (0, 1) => {
                    let p = a[oa];
                    row.iter_mut().zip(&b[ob..ob + inner]).for_each(|(o, &q)| *o = f(p, q))
                }
                _ => {
                    for (j, o) in row.iter_mut().enumerate() {
                        *o = f(a[oa + j * ia], b[ob + j * ib]);
                    }
                }
            }
            for d in (0..r - 1).rev() {
                idx[d] += 1;
                oa += da[d];
                ob += db[d];
                if idx[d] < dims[d] {
                    break;
                }
                oa -= da[d] * dims[d];
                ob -= db[d] * dims[d];
                idx[d] = 0;
            }
        }
    };
    if n > PAR_MIN {
        let per = rows.div_ceil(rayon::current_num_threads().max(1) * 4).max(1);
        dst.par_chunks_mut(per * inner).enumerate().for_each(|(c, d)| run(c * per, d));
    } else {
        run(0, dst);
    }
}

/// Element count above which elementwise kernels split work across threads.
pub const PAR_MIN: usize = 1 << 15;

#[inline(always)]
pub fn bin_f32(op: BinOp, p: f32, q: f32) -> f32 {
    use BinOp::*;
    match op {
        Add => p + q,
        Sub => p - q,
        Mul => p * q,
        Div => p / q,
        FloorDiv => (p / q).floor(),
        FloorMod => p - (p / q).floor() * q,
        Max => p.max(q),
        Min => p.min(q),
        Pow => p.powf(q),
        SquaredDifference => (p - q) * (p - q),
        PRelu => {
            if p < 0.0 {
                p * q
            } else {
                p
            }
        }
        And => ((p != 0.0) && (q != 0.0)) as u8 as f32,
        Or => ((p != 0.0) || (q != 0.0)) as u8 as f32,
        _ => f32::NAN,
    }
}

pub(crate) fn bin_i64(op: BinOp, p: i64, q: i64) -> i64 {
    use BinOp::*;
    match op {
        Add => p.wrapping_add(q),
        Sub => p.wrapping_sub(q),
        Mul => p.wrapping_mul(q),
        Div => {
            if q == 0 {
                0
            } else {
                p.wrapping_div(q)
            }
        }
        FloorDiv => {
            if q == 0 {
                0
            } else {
                p.div_euclid(q) - if q < 0 && p.rem_euclid(q) != 0 { 1 } else { 0 }
            }
        }
        FloorMod => {
            if q == 0 {
                0
            } else {
                let r = p.wrapping_rem(q);
                if r != 0 && ((r < 0) != (q < 0)) {
                    r + q
                } else {
                    r
                }
            }
        }
        Max => p.max(q),
        Min => p.min(q),
        Pow => (p as f64).powf(q as f64) as i64,
        SquaredDifference => (p - q) * (p - q),
        PRelu => {
            if p < 0 {
                p * q
            } else {
                p
            }
        }
        And => ((p != 0) && (q != 0)) as i64,
        Or => ((p != 0) || (q != 0)) as i64,
        _ => 0,
    }
}

#[inline(always)]
pub fn un_f32(op: UnOp, x: f32) -> f32 {
    match op {
        UnOp::Abs => x.abs(),
        UnOp::Neg => -x,
        UnOp::Exp => x.exp(),
        UnOp::Log => x.ln(),
        UnOp::Sqrt => x.sqrt(),
        UnOp::Rsqrt => 1.0 / x.sqrt(),
        UnOp::Reciprocal => 1.0 / x,
        UnOp::Floor => x.floor(),
        UnOp::Ceil => x.ceil(),
        UnOp::Tanh => x.tanh(),
        UnOp::Erf => erf(x),
        UnOp::Not => (x == 0.0) as u8 as f32,
        UnOp::Act(a) => a.apply(x),
    }
}

/// Error function (Abramowitz-Stegun 7.1.26 refined; |err| < 1.2e-7 via erfc series).
pub fn erf(x: f32) -> f32 {
    let x = x as f64;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = 1.0
        - t * (-x * x - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    (if x >= 0.0 { y } else { -y }) as f32
}

/// [`unary_f32`] into `dst` (as long as `v`).
pub fn unary_f32_into(op: UnOp, v: &[f32], dst: &mut [f32]) {
    use rayon::prelude::*;
    if v.len() > PAR_MIN {
        dst.par_iter_mut().zip(v).for_each(|(o, &a)| *o = un_f32(op, a));
    } else {
        dst.iter_mut().zip(v).for_each(|(o, &a)| *o = un_f32(op, a));
    }
}

pub fn unary_f32(op: UnOp, v: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    if v.len() > PAR_MIN {
        v.par_iter().map(|&a| un_f32(op, a)).collect()
    } else {
        v.iter().map(|&a| un_f32(op, a)).collect()
    }
}

pub fn unary(op: UnOp, x: &Tensor) -> R<Tensor> {
    let data = match &x.data {
        TensorData::F32(v) => TensorData::F32(unary_f32(op, v)),
        TensorData::F16(v) => TensorData::F16(v.iter().map(|&a| f16::from_f32(un_f32(op, a.to_f32()))).collect()),
        TensorData::Bool(v) if op == UnOp::Not => TensorData::Bool(v.iter().map(|&a| !a).collect()),
        TensorData::I32(v) => match op {
            UnOp::Abs => TensorData::I32(v.iter().map(|a| a.wrapping_abs()).collect()),
            UnOp::Neg => TensorData::I32(v.iter().map(|a| a.wrapping_neg()).collect()),
            _ => return Err(format!("{op:?} on i32")),
        },
        TensorData::I64(v) => match op {
            UnOp::Abs => TensorData::I64(v.iter().map(|a| a.wrapping_abs()).collect()),
            UnOp::Neg => TensorData::I64(v.iter().map(|a| a.wrapping_neg()).collect()),
            _ => return Err(format!("{op:?} on i64")),
        },
        _ => return Err(format!("{op:?} on {}", x.dtype())),
    };
    Ok(Tensor::new(x.shape.clone(), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast broadcasting paths (merged dimensions, tiled short rows, odometer) against
    /// the plain offset table, on shapes that take each path, both operand orders.
    #[test]
    fn broadcasting_paths_match_the_offset_table() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 5, 7, 3], &[1, 1, 1, 3]),
            (&[2, 5, 7, 3], &[3]),
            (&[64, 64, 6, 17], &[64, 64, 1, 17]),
            (&[2, 3, 4, 5], &[2, 3, 1, 5]),
            (&[7, 2, 9], &[7, 1, 9]),
            (&[4, 1, 6], &[1, 5, 1]),
            (&[3, 4], &[4]),
            (&[3, 4], &[3, 1]),
            (&[1], &[5, 1, 2]),
            (&[200, 300, 3], &[1, 1, 3]),
        ];
        for &(sa, sb) in cases {
            for (sa, sb) in [(sa, sb), (sb, sa)] {
                let out = broadcast_shapes(&[sa, sb]).unwrap();
                let a: Vec<f32> = (0..numel(sa)).map(|i| (i % 13) as f32 - 6.0).collect();
                let b: Vec<f32> = (0..numel(sb)).map(|i| (i % 7) as f32 + 0.5).collect();
                let offs = broadcast_offsets(&out, &[sa, sb]);
                let want: Vec<f32> = offs[0].iter().zip(&offs[1]).map(|(&i, &j)| a[i] - b[j]).collect();
                assert_eq!(binary_f32(BinOp::Sub, &a, sa, &b, sb, &out), want, "{sa:?} - {sb:?}");
            }
        }
    }
}
