//! `C = A x B` with B (the weights) packed once at plan time, and the epilogue fused.
//!
//! B (`k x n`, row-major, as a conv's HWIO weights are) is cut into column panels of up to
//! 4 vectors (64 columns on AVX-512, 16 on AVX2 and portable), each stored `[k][panel]`
//! contiguous and zero-padded, with its bias padded the same way. A register tile of
//! `MR` rows by the panel's width is accumulated over all of `k` (A's rows are read in
//! place, each value broadcast), then finished (bias, residual, clamp) and stored with a
//! mask for the panel's last columns. Work is split over the cores as (row block, panel)
//! tasks, row blocks outermost so a block's rows stay in cache across its panels. While a
//! panel runs, its tiles fetch the next panel's weights into L2: on 8x8 maps (64 rows,
//! weights of up to 2.8 MB read once per frame from L3 or memory) the first tile of each
//! panel otherwise waited on them, and those layers ran 15% under their hot speed.

use super::vec::{finish, Portable, Simd};
#[cfg(target_arch = "x86_64")]
use super::vec::{Avx2, Avx512};
use super::{Epilogue, Isa, SendPtr};
use rayon::prelude::*;

struct Panel {
    n0: usize,
    cols: usize,
    nv: usize,
    /// `[k][nv * L]`; for a dot-product panel (`nv == 0`), B's columns transposed,
    /// `[cols][k]`
    data: super::buf::Buf,
    /// `[nv * L]`
    bias: super::buf::Buf,
}

/// The weights of one GEMM, packed for one instruction-set path.
pub struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    panels: Vec<Panel>,
}

/// Up to this many columns, a GEMM runs as dot products along k: a register tile would use
/// 1-4 of its 16 lanes (MoveNet's centre and box heads end in 1 and 2 columns). So do the
/// last 1-4 columns past whole vectors (its keypoint heads' 17 and 34 are 16 + 1 and
/// 32 + 2), as a panel of their own.
const DOTS: usize = 4;

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedB({} x {}, {} panels, {})", self.k, self.n, self.panels.len(), self.isa.name())
    }
}

fn max_nv(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 4,
        Isa::Avx2 | Isa::Portable => 2,
    }
}

impl PackedB {
    /// Packs `b` (`k x n`, row-major) and the optional bias (`n`).
    pub fn new(isa: Isa, b: &[f32], k: usize, n: usize, bias: Option<&[f32]>) -> Result<Self, String> {
        if b.len() != k * n {
            return Err(format!("weight has {} values, expected {k} x {n}", b.len()));
        }
        if bias.is_some_and(|bs| bs.len() != n) {
            return Err(format!("bias has {} values, expected {n}", bias.map_or(0, |b| b.len())));
        }
        let l = isa.lanes();
        // the last 1-4 columns (or all of up to 4) as dot products, when k fills a vector
        let rem = if n <= DOTS { n } else { n % l };
        let dots = if (1..=DOTS).contains(&rem) && k >= l { rem } else { 0 };
        let (full, n) = (n, n - dots);
        // as few panels as the widest tile allows, of equal width
        let vecs = n.div_ceil(l);
        let count = vecs.div_ceil(max_nv(isa)).max(1);
        let nv = vecs.div_ceil(count).max(1);
        let mut panels = Vec::with_capacity(count);
        let mut n0 = 0;
        while n0 < n {
            let w = nv * l;
            let cols = (n - n0).min(w);
            let pnv = cols.div_ceil(l);
            let pw = pnv * l;
            let mut data = super::buf::Buf::zeros(k * pw);
            for kk in 0..k {
                data[kk * pw..kk * pw + cols].copy_from_slice(&b[kk * full + n0..kk * full + n0 + cols]);
            }
            let mut pb = super::buf::Buf::zeros(pw);
            if let Some(bs) = bias {
                pb[..cols].copy_from_slice(&bs[n0..n0 + cols]);
            }
            panels.push(Panel { n0, cols, nv: pnv, data, bias: pb });
            n0 += cols;
        }
        if dots > 0 {
            let mut t = super::buf::Buf::zeros(dots * k);
            let mut pb = super::buf::Buf::zeros(dots);
            for j in 0..dots {
                for kk in 0..k {
                    t[j * k + kk] = b[kk * full + n + j];
                }
                pb[j] = bias.map_or(0.0, |bs| bs[n + j]);
            }
            panels.push(Panel { n0: n, cols: dots, nv: 0, data: t, bias: pb });
        }
        Ok(PackedB { isa, k, n: full, panels })
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    /// Bytes held by the packed weights.
    pub fn bytes(&self) -> usize {
        self.panels.iter().map(|p| (p.data.len() + p.bias.len()) * 4).sum()
    }
}

/// Rows of the register tile for `nv` vectors of `l` lanes (as `panel_rows` picks it).
fn tile_rows(l: usize, nv: usize) -> usize {
    match (l, nv) {
        (16, 4) | (8, 2) => 6,
        (_, 1..=3) => 8,
        _ => 6,
    }
}

/// Row block of one task, in whole tiles of `tile` rows: the split of `m` rows into blocks
/// of at most 192 (so that a block's rows of A stay in cache across its panels) whose
/// (row block, panel) tasks, dealt out to `threads`, finish soonest, each task charged one
/// tile for its overhead. On 2 threads, MoveNet's 16x16 layers (256 rows, 9 panels) run as
/// 2 blocks of 132 and 124 rows (18 tasks, 9 each) rather than 192 and 64.
fn row_block(m: usize, panels: usize, threads: usize, tile: usize) -> usize {
    let tiles = m.div_ceil(tile).max(1);
    let max_per = (192 / tile).max(1);
    if threads <= 1 {
        return tiles.min(max_per) * tile;
    }
    let mut best = (usize::MAX, tiles.min(max_per));
    for blocks in 1..=tiles {
        let per = tiles.div_ceil(blocks);
        if per > max_per {
            continue;
        }
        let tasks = tiles.div_ceil(per) * panels;
        let cost = tasks.div_ceil(threads) * per + tasks.div_ceil(threads);
        if cost < best.0 {
            best = (cost, per);
        }
        if per == 1 || tasks >= 64 * threads {
            break;
        }
    }
    best.1 * tile
}

/// `out[m x n] = epilogue(a[m x k] (row stride lda) x B)`, on `threads` rayon workers
/// (the pool's; 1 runs on the caller).
pub fn gemm(pb: &PackedB, m: usize, a: &[f32], lda: usize, out: &mut [f32], ep: &Epilogue) -> Result<(), String> {
    gemm_on(pb, m, a, lda, out, ep, true)
}

/// [`gemm`] on the calling thread only (for callers already split across the cores).
pub fn gemm_seq(pb: &PackedB, m: usize, a: &[f32], lda: usize, out: &mut [f32], ep: &Epilogue) -> Result<(), String> {
    gemm_on(pb, m, a, lda, out, ep, false)
}

fn gemm_on(pb: &PackedB, m: usize, a: &[f32], lda: usize, out: &mut [f32], ep: &Epilogue, parallel: bool) -> Result<(), String> {
    let n = pb.n;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if lda < pb.k || a.len() < (m - 1) * lda + pb.k || out.len() < m * n {
        return Err(format!("gemm operands too small: a {} (m {m}, k {}, lda {lda}), out {} (n {n})", a.len(), pb.k, out.len()));
    }
    if ep.residual.is_some_and(|r| r.len() < m * n) {
        return Err("gemm residual too small".into());
    }
    let threads = if parallel { rayon::current_num_threads().max(1) } else { 1 };
    let np = pb.panels.len();
    let mc = row_block(m, np, threads, tile_rows(pb.isa.lanes(), pb.panels[0].nv));
    let blocks = m.div_ceil(mc);
    let c = SendPtr(out.as_mut_ptr());
    let res = SendPtr(ep.residual.map_or(std::ptr::null_mut(), |r| r.as_ptr() as *mut f32));
    let task = |t: usize| {
        let (blk, p) = (t / np, t % np);
        let r0 = blk * mc;
        let rows = mc.min(m - r0);
        let (c, res) = (c, res);
        // SAFETY: rows r0..r0+rows of a, out and the residual are in bounds (checked
        // above); tasks write disjoint (row block, panel) regions of out.
        unsafe {
            let a = a.as_ptr().add(r0 * lda);
            let cp = c.0.add(r0 * n);
            let rp = if res.0.is_null() { res.0 } else { res.0.add(r0 * n) };
            run(pb, p, rows, a, lda, cp, n, rp, ep);
        }
    };
    if threads == 1 || blocks * np == 1 {
        (0..blocks * np).for_each(task);
    } else {
        (0..blocks * np).into_par_iter().for_each(task);
    }
    Ok(())
}

/// `out[m x n] = epilogue(A x B)` where A's rows are made on demand by `fill(r0, rows,
/// buf)` (`rows x k`, contiguous): im2col for convolutions that are not pointwise. Row
/// blocks are spread over the cores; each fills its rows once for all panels.
pub fn gemm_with<F>(pb: &PackedB, m: usize, fill: F, out: &mut [f32], ep: &Epilogue) -> Result<(), String>
where
    F: Fn(usize, usize, &mut [f32]) + Sync,
{
    let (n, k) = (pb.n, pb.k);
    if m == 0 || n == 0 {
        return Ok(());
    }
    if out.len() < m * n || ep.residual.is_some_and(|r| r.len() < m * n) {
        return Err("gemm output or residual too small".into());
    }
    let threads = rayon::current_num_threads().max(1);
    let mc = row_block(m, 1, threads, tile_rows(pb.isa.lanes(), pb.panels[0].nv));
    let blocks = m.div_ceil(mc);
    let c = SendPtr(out.as_mut_ptr());
    let res = SendPtr(ep.residual.map_or(std::ptr::null_mut(), |r| r.as_ptr() as *mut f32));
    let task = |buf: &mut Vec<f32>, blk: usize| {
        let r0 = blk * mc;
        let rows = mc.min(m - r0);
        buf.resize(rows * k, 0.0);
        fill(r0, rows, &mut buf[..rows * k]);
        let (c, res) = (c, res);
        for p in 0..pb.panels.len() {
            // SAFETY: as in `gemm`; each block writes its own rows.
            unsafe {
                let cp = c.0.add(r0 * n);
                let rp = if res.0.is_null() { res.0 } else { res.0.add(r0 * n) };
                run(pb, p, rows, buf.as_ptr(), k, cp, n, rp, ep);
            }
        }
    };
    if threads == 1 || blocks == 1 {
        let mut buf = Vec::new();
        (0..blocks).for_each(|b| task(&mut buf, b));
    } else {
        (0..blocks).into_par_iter().for_each_init(Vec::new, task);
    }
    Ok(())
}

/// One panel over `rows` rows, on the packed weights' path.
#[allow(clippy::too_many_arguments)]
unsafe fn run(pb: &PackedB, p: usize, rows: usize, a: *const f32, lda: usize, c: *mut f32, ldc: usize, res: *const f32, ep: &Epilogue) {
    let panel = &pb.panels[p];

    // the panel a task runs next (tasks run in order on each thread): its weights are
    // fetched into L2 while this one computes, rather than on demand by its first tile
    // (panels under 32 KB, as with a small k, stay in cache between runs)
    let next = pb.panels.get(p + 1).filter(|n| n.data.len() >= 8192).map_or(&[][..], |n| &n.data[..]);
    let j = Job { p: panel, next, k: pb.k, rows, a, lda, c, ldc, res, ep };
    if panel.nv == 0 {
        return match pb.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => dots_avx512(&j),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => dots_avx2(&j),
            _ => dots::<Portable>(&j),
        };
    }
    match pb.isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => panel_avx512(&j),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => panel_avx2(&j),
        _ => panel_rows::<Portable>(&j),
    }
}

/// One panel over `rows` rows of A, for `panel_rows`.
#[derive(Clone, Copy)]
struct Job<'a> {
    p: &'a Panel,
    /// the weights to fetch into L2 meanwhile (the next panel's, or none)
    next: &'a [f32],
    k: usize,
    rows: usize,
    a: *const f32,
    lda: usize,
    c: *mut f32,
    ldc: usize,
    res: *const f32,
    ep: &'a Epilogue<'a>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn panel_avx512(j: &Job) {
    panel_rows::<Avx512>(j)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn panel_avx2(j: &Job) {
    panel_rows::<Avx2>(j)
}

#[inline(always)]
unsafe fn panel_rows<S: Simd>(j: &Job) {
    let Job { p, next, k, rows, a, lda, c, ldc, res, ep } = *j;
    let c = c.add(p.n0);
    let res = if res.is_null() { res } else { res.add(p.n0) };
    macro_rules! tiles {
        ($mr:literal, $nv:literal) => {{
            // each tile prefetches its share of the next panel's lines
            let (lines, tiles) = (next.len().div_ceil(16), rows.div_ceil($mr));
            let share = lines.div_ceil(tiles);
            let mut r = 0;
            while r < rows {
                let h = $mr.min(rows - r);
                let rr = if res.is_null() { res } else { res.add(r * ldc) };
                let l0 = (r / $mr) * share;
                let pf = &next[(l0 * 16).min(next.len())..((l0 + share) * 16).min(next.len())];
                tile::<S, $mr, $nv>(h, k, a.add(r * lda), lda, p, pf, c.add(r * ldc), ldc, rr, ep);
                r += $mr;
            }
        }};
    }
    // rows per tile: enough accumulators to hide the FMA latency, few enough row
    // pointers to stay in registers
    match (S::L, p.nv) {
        (16, 4) => tiles!(6, 4),
        (16, 3) => tiles!(8, 3),
        (16, 2) => tiles!(8, 2),
        (_, 2) => tiles!(6, 2),
        (_, 1) => tiles!(8, 1),
        (_, 3) => tiles!(8, 3),
        _ => tiles!(6, 4),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dots_avx512(j: &Job) {
    dots::<Avx512>(j)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2(j: &Job) {
    dots::<Avx2>(j)
}

#[inline(always)]
unsafe fn dots<S: Simd>(j: &Job) {
    match j.p.cols {
        1 => dots_n::<S, 1>(j),
        2 => dots_n::<S, 2>(j),
        3 => dots_n::<S, 3>(j),
        _ => dots_n::<S, 4>(j),
    }
}

/// The `N <= DOTS` columns of a dot-product panel (`j.p`, B's columns transposed,
/// `[N][k]`): four rows at a time, each column a dot product of the row with a row of the
/// panel, in `4 x N` vector sums (independent chains), then summed across lanes; the
/// epilogue as `finish` applies it.
#[inline(always)]
unsafe fn dots_n<S: Simd, const N: usize>(j: &Job) {
    let Job { p, k, rows, a, lda, c, ldc, res, ep, .. } = *j;
    let bt = &p.data[..];
    let c = c.add(p.n0);
    let res = if res.is_null() { res } else { res.add(p.n0) };
    let (kv, kr) = (k / S::L * S::L, k % S::L);
    let clamp = ep.lo > f32::NEG_INFINITY || ep.hi < f32::INFINITY;
    let mut i = 0;
    while i < rows {
        let h = (rows - i).min(4);
        // rows past h read the last row again (their results are not stored)
        let ap: [*const f32; 4] = std::array::from_fn(|r| a.add((i + r.min(h - 1)) * lda));
        let mut acc = [[S::zero(); N]; 4];
        let mut off = 0;
        while off < kv {
            let w: [S::V; N] = std::array::from_fn(|j| S::load(bt.as_ptr().add(j * k + off)));
            for (r, p) in ap.iter().enumerate() {
                let x = S::load(p.add(off));
                for j in 0..N {
                    acc[r][j] = S::fma(x, w[j], acc[r][j]);
                }
            }
            off += S::L;
        }
        if kr > 0 {
            let w: [S::V; N] = std::array::from_fn(|j| S::load_part(bt.as_ptr().add(j * k + off), kr));
            for (r, p) in ap.iter().enumerate() {
                let x = S::load_part(p.add(off), kr);
                for j in 0..N {
                    acc[r][j] = S::fma(x, w[j], acc[r][j]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate().take(h) {
            for (j, &v) in row.iter().enumerate() {
                let o = (i + r) * ldc + j;
                let mut x = S::hsum(v) + p.bias[j];
                let rv = (!res.is_null()).then(|| *res.add(o));
                if let (Some(rv), true) = (rv, ep.residual_first) {
                    x += rv;
                }
                if clamp {
                    x = x.max(ep.lo).min(ep.hi);
                }
                if let (Some(rv), false) = (rv, ep.residual_first) {
                    x += rv;
                }
                *c.add(o) = x;
            }
        }
        i += 4;
    }
}

/// One `MR x NV` register tile: `h <= MR` rows of A against one panel, over all of `k`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<S: Simd, const MR: usize, const NV: usize>(
    h: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    p: &Panel,
    pf: &[f32],
    c: *mut f32,
    ldc: usize,
    res: *const f32,
    ep: &Epilogue,
) {
    // rows past h read the last row again (their results are not stored)
    let mut ap = [a; MR];
    for (r, x) in ap.iter_mut().enumerate() {
        *x = a.add(r.min(h - 1) * lda);
    }
    // the tile's output lines, so that their fetch for ownership overlaps the FMAs
    for r in 0..h {
        let mut col = 0;
        while col < p.cols {
            S::prefetch_w(c.add(r * ldc + col));
            col += 16; // one cache line of f32
        }
    }
    let mut acc = [[S::zero(); NV]; MR];
    let mut bp = p.data.as_ptr();
    macro_rules! k_step {
        ($kk:expr) => {{
            let kk = $kk;
            if kk % 16 == 0 {
                // the next tile's rows of A
                // (past the last tile this points beyond A: wrapping, as a prefetch never
                // faults and the address is not dereferenced)
                for x in &ap {
                    S::prefetch(x.wrapping_add(MR * lda + kk));
                }
            }
            let mut bv = [S::zero(); NV];
            for (v, b) in bv.iter_mut().enumerate() {
                *b = S::load(bp.add(v * S::L));
            }
            for r in 0..MR {
                let av = S::splat(*ap[r].add(kk));
                for v in 0..NV {
                    acc[r][v] = S::fma(av, bv[v], acc[r][v]);
                }
            }
            bp = bp.add(NV * S::L);
        }};
    }
    if pf.is_empty() {
        for kk in 0..k {
            k_step!(kk);
        }
    } else {
        // one line of `pf` into L2 every `step` k (spread over the tile)
        let step = (k / pf.len().div_ceil(16)).max(1);
        let mut pf_at = 0;
        for kk in 0..k {
            if kk % step == 0 && pf_at < pf.len() {
                S::prefetch_l2(pf.as_ptr().add(pf_at));
                pf_at += 16;
            }
            k_step!(kk);
        }
    }
    let clamp = (ep.lo > f32::NEG_INFINITY || ep.hi < f32::INFINITY).then(|| (S::splat(ep.lo), S::splat(ep.hi)));
    for (r, row) in acc.iter().enumerate().take(h) {
        for (v, &x) in row.iter().enumerate() {
            let col = v * S::L;
            if col >= p.cols {
                break;
            }
            let n = (p.cols - col).min(S::L);
            let rp = if res.is_null() { res } else { res.add(r * ldc + col) };
            finish::<S>(x, Some(S::load(p.bias.as_ptr().add(col))), clamp, rp, ep.residual_first, c.add(r * ldc + col), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &[f32], b: &[f32], bias: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = bias[j] as f64;
                for kk in 0..k {
                    s += a[i * k + kk] as f64 * b[kk * n + j] as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_path_matches_the_reference_on_ragged_shapes() {
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|i| i.supported()) {
            for &(m, k, n) in &[
                (1, 1, 1),
                (7, 3, 17),
                (50, 27, 48),
                (64, 96, 144),
                (37, 240, 40),
                (130, 24, 1),
                (9, 160, 73),
                (20, 200, 150),
                (23, 96, 1),
                (13, 37, 2),
                (6, 16, 3),
                (9, 50, 4),
                // whole vectors and a dot-product panel for the last 1-4 columns
                (70, 96, 34),
                (33, 96, 17),
                (9, 40, 20),
                (5, 20, 66),
                (64, 520, 258),
            ] {
                let (a, b, bias) = (data(m * k, 1), data(k * n, 2), data(n, 3));
                let want = reference(&a, &b, &bias, m, k, n);
                let pb = PackedB::new(isa, &b, k, n, Some(&bias)).unwrap();
                let mut out = vec![f32::NAN; m * n];
                gemm(&pb, m, &a, k, &mut out, &Epilogue::none()).unwrap();
                for (i, (x, y)) in out.iter().zip(&want).enumerate() {
                    assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{isa:?} {m}x{k}x{n} at {i}: {x} vs {y}");
                }
                // clamp and residual
                let r = data(m * n, 4);
                let ep = Epilogue { lo: 0.0, hi: 0.5, residual: Some(&r), residual_first: false };
                gemm(&pb, m, &a, k, &mut out, &ep).unwrap();
                for (i, ((x, y), r)) in out.iter().zip(&want).zip(&r).enumerate() {
                    let y = y.clamp(0.0, 0.5) + r;
                    assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{isa:?} {m}x{k}x{n} ep at {i}: {x} vs {y}");
                }
            }
        }
    }
}
