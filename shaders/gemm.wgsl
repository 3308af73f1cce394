// Tuned GEMM (`runtime::gpu::tiles`): convolution as implicit GEMM (`conv_tiled`) and batched
// MatMul (`matmul_tiled`) with a tile shape chosen per adapter and shape class. The file is
// valid WGSL as it stands (the 64x64 configuration); the host rewrites the `const` lines
// between the TILE markers for each configuration it compiles, so each pipeline is
// specialised and the compiler unrolls its loops.
//
// - A workgroup of TX x TY threads computes a BM x BN tile (BM = TY * RM, BN = TX * RN); each
//   thread holds an RM x RN register block as vec4 rows, its rows and columns interleaved
//   (vec4 group p * TY + ly, q * TX + lx) so neighbouring threads read neighbouring vec4s of
//   workgroup memory.
// - K advances BK at a time through two stages of workgroup memory: the next stage's
//   operands are fetched from global memory into registers before the current stage is
//   multiplied, and stored into the other stage after it, so one barrier per step suffices.
// - A_VEC: A is read as vec4 along K (NHWC input with channels per group % 4 == 0; row-major
//   A with K % 4 == 0). B_VEC: B is read as vec4 along N (weights with output channels
//   % 4 == 0; row-major B with N % 4 == 0).
// - Workgroups are numbered linearly (N tiles fastest, then M tiles, then groups or batch)
//   and folded into 2-D, so no dispatch dimension passes its limit at large batch.
// The sum over K runs in the same order as in the portable kernels (conv.wgsl, matmul.wgsl).
// Storage is of type Fs (f32, or f16 at precision f16); workgroup memory and sums are f32.

// TILE begin
const TX: u32 = 16u;
const TY: u32 = 16u;
const RM: u32 = 4u;
const RN: u32 = 4u;
const BK: u32 = 16u;
const A_VEC: bool = false;
const B_VEC: bool = false;
// TILE end

const BM: u32 = TY * RM;
const BN: u32 = TX * RN;
const NT: u32 = TX * TY;
const QM: u32 = RM / 4u;
const QN: u32 = RN / 4u;
const AS: u32 = BK * BM / 4u;
const BS: u32 = BK * BN / 4u;
const A1: u32 = (BK * BM + NT - 1u) / NT;
const A4: u32 = (BK * BM / 4u + NT - 1u) / NT;
const B1: u32 = (BK * BN + NT - 1u) / NT;
const B4: u32 = (BK * BN / 4u + NT - 1u) / NT;
const ACC: u32 = RM * QN;

var<workgroup> As: array<vec4<f32>, 2u * AS>;
var<workgroup> Bs: array<vec4<f32>, 2u * BS>;

struct Regs {
    a: array<f32, A1>,
    a4: array<vec4<f32>, A4>,
    b: array<f32, B1>,
    b4: array<vec4<f32>, B4>,
};

// Regs -> stage s of workgroup memory.
fn stash(s: u32, t: u32, r: ptr<function, Regs>) {
    if (A_VEC) {
        for (var i = 0u; i < A4; i = i + 1u) {
            let idx = t + i * NT;
            if (idx < BK * BM / 4u) {
                let mm = idx % BM;
                let k4 = idx / BM * 4u;
                for (var c = 0u; c < 4u; c = c + 1u) {
                    As[s * AS + (k4 + c) * (BM / 4u) + mm / 4u][mm % 4u] = (*r).a4[i][c];
                }
            }
        }
    } else {
        for (var i = 0u; i < A1; i = i + 1u) {
            let idx = t + i * NT;
            if (idx < BK * BM) {
                let mm = idx % BM;
                As[s * AS + idx / BM * (BM / 4u) + mm / 4u][mm % 4u] = (*r).a[i];
            }
        }
    }
    if (B_VEC) {
        for (var i = 0u; i < B4; i = i + 1u) {
            let idx = t + i * NT;
            if (idx < BS) { Bs[s * BS + idx] = (*r).b4[i]; }
        }
    } else {
        for (var i = 0u; i < B1; i = i + 1u) {
            let idx = t + i * NT;
            if (idx < BK * BN) {
                let nn = idx % BN;
                Bs[s * BS + idx / BN * (BN / 4u) + nn / 4u][nn % 4u] = (*r).b[i];
            }
        }
    }
}

// acc += the stage-s tiles of A and B.
fn mul_stage(s: u32, lx: u32, ly: u32, acc: ptr<function, array<vec4<f32>, ACC>>) {
    for (var kk = 0u; kk < BK; kk = kk + 1u) {
        var b: array<vec4<f32>, QN>;
        for (var q = 0u; q < QN; q = q + 1u) {
            b[q] = Bs[s * BS + kk * (BN / 4u) + q * TX + lx];
        }
        for (var p = 0u; p < QM; p = p + 1u) {
            let a = As[s * AS + kk * (BM / 4u) + p * TY + ly];
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var q = 0u; q < QN; q = q + 1u) {
                    (*acc)[(p * 4u + i) * QN + q] = (*acc)[(p * 4u + i) * QN + q] + a[i] * b[q];
                }
            }
        }
    }
}

// ---- convolution: bindings 0-7 ----

@group(0) @binding(0) var<uniform> P: ConvP;
@group(0) @binding(1) var<storage, read> X: array<Fs>;
@group(0) @binding(2) var<storage, read> Wt: array<Fs>;
@group(0) @binding(3) var<storage, read> Bias: array<Fs>;
@group(0) @binding(4) var<storage, read> Res: array<Fs>;
@group(0) @binding(5) var<storage, read_write> O: array<Fs>;
@group(0) @binding(6) var<storage, read> X4: array<vec4<Fs>>;
@group(0) @binding(7) var<storage, read> W4: array<vec4<Fs>>;

fn conv_fetch(k0: u32, m0: u32, n0: u32, g: u32, M: u32, K: u32, t: u32, r: ptr<function, Regs>) {
    conv_fetch_a(k0, m0, g, M, K, t, r);
    conv_fetch_b(k0, n0, g, K, t, r);
}

fn conv_fetch_a(k0: u32, m0: u32, g: u32, M: u32, K: u32, t: u32, r: ptr<function, Regs>) {
    if (A_VEC) {
        for (var i = 0u; i < A4; i = i + 1u) {
            let idx = t + i * NT;
            let m = m0 + idx % BM;
            let k = k0 + idx / BM * 4u;
            var v = vec4<f32>(0.0);
            if (idx < BK * BM / 4u && m < M && k < K) {
                let at = conv_tap(P, m, k, g);
                if (at >= 0) { v = vec4<f32>(X4[u32(at) / 4u]); }
            }
            (*r).a4[i] = v;
        }
    } else {
        for (var i = 0u; i < A1; i = i + 1u) {
            let idx = t + i * NT;
            let m = m0 + idx % BM;
            let k = k0 + idx / BM;
            var v = 0.0;
            if (idx < BK * BM && m < M && k < K) {
                let at = conv_tap(P, m, k, g);
                if (at >= 0) { v = f32(X[u32(at)]); }
            }
            (*r).a[i] = v;
        }
    }
}

fn conv_fetch_b(k0: u32, n0: u32, g: u32, K: u32, t: u32, r: ptr<function, Regs>) {
    if (B_VEC) {
        for (var i = 0u; i < B4; i = i + 1u) {
            let idx = t + i * NT;
            let nn = n0 + idx % (BN / 4u) * 4u;
            let k = k0 + idx / (BN / 4u);
            var v = vec4<f32>(0.0);
            if (idx < BS && k < K && nn < P.opg) { v = vec4<f32>(W4[(k * P.cout + g * P.opg + nn) / 4u]); }
            (*r).b4[i] = v;
        }
    } else {
        for (var i = 0u; i < B1; i = i + 1u) {
            let idx = t + i * NT;
            let nn = n0 + idx % BN;
            let k = k0 + idx / BN;
            var v = 0.0;
            if (idx < BK * BN && k < K && nn < P.opg) { v = f32(Wt[k * P.cout + g * P.opg + nn]); }
            (*r).b[i] = v;
        }
    }
}

fn conv_finish(v0: f32, oc: u32, oidx: u32) -> f32 {
    var v = v0;
    if (P.has_bias == 1u) { v = v + f32(Bias[oc]); }
    if (P.res_mode == 1u) { return act_fn(v + f32(Res[oidx]), P.act, P.p0, P.p1); }
    if (P.res_mode == 2u) { return act_fn(v, P.act, P.p0, P.p1) + f32(Res[oidx]); }
    return act_fn(v, P.act, P.p0, P.p1);
}

@compute @workgroup_size(TX, TY)
fn conv_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let M = P.n * P.oh * P.ow;
    let K = P.kh * P.kw * P.cpg;
    let tile = tile_at(wg, nw, M, P.opg, BM, BN);
    if (tile.z >= P.groups) { return; }
    let t = lid.y * TX + lid.x;
    var acc: array<vec4<f32>, ACC>;
    var r: Regs;
    conv_fetch(0u, tile.x, tile.y, tile.z, M, K, t, &r);
    stash(0u, t, &r);
    workgroupBarrier();
    let steps = (K + BK - 1u) / BK;
    for (var st = 0u; st < steps; st = st + 1u) {
        let s = st % 2u;
        let more = st + 1u < steps;
        if (more) { conv_fetch((st + 1u) * BK, tile.x, tile.y, tile.z, M, K, t, &r); }
        mul_stage(s, lid.x, lid.y, &acc);
        if (more) { stash(1u - s, t, &r); }
        workgroupBarrier();
    }
    conv_store(tile, lid, M, &acc);
}

// The epilogue of a conv tile: bias, activation and residual, then the store.
fn conv_store(tile: vec3<u32>, lid: vec3<u32>, M: u32, acc: ptr<function, array<vec4<f32>, ACC>>) {
    for (var p = 0u; p < QM; p = p + 1u) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            let m = tile.x + (p * TY + lid.y) * 4u + i;
            if (m >= M) { continue; }
            let ox = m % P.ow;
            let tt = m / P.ow;
            let oy = tt % P.oh;
            let b = tt / P.oh;
            for (var q = 0u; q < QN; q = q + 1u) {
                let v = (*acc)[(p * 4u + i) * QN + q];
                for (var j = 0u; j < 4u; j = j + 1u) {
                    let nn = tile.y + (q * TX + lid.x) * 4u + j;
                    if (nn >= P.opg) { continue; }
                    let oc = tile.z * P.opg + nn;
                    let oidx = b * P.osn + oc * P.osc + oy * P.osy + ox * P.osx;
                    O[oidx] = to_fs(conv_finish(v[j], oc, oidx));
                }
            }
        }
    }
}

// ---- depthwise + pointwise: the conv bindings, and 14-16 ----
// `dwpw_tiled` runs a 1x1 convolution (P: stride 1, one group) on the output of a depthwise
// convolution (D: NHWC input X) that it computes as it fetches A, so the depthwise result
// never goes through memory. Each A element is the depthwise sum over its taps (in the
// portable kernels' order), plus its bias, through its activation.

@group(0) @binding(14) var<storage, read> D: ConvP;
@group(0) @binding(15) var<storage, read> DW: array<Fs>;
@group(0) @binding(16) var<storage, read> DB: array<Fs>;

fn dw_act(v: f32) -> f32 {
    return act_fn(v, D.act, D.p0, D.p1);
}

// (batch, y, x) of depthwise output pixel m.
fn dw_pixel(m: u32) -> vec3<u32> {
    let t = m / D.ow;
    return vec3<u32>(t / D.oh, t % D.oh, m % D.ow);
}

// Channels c..c+3 of depthwise output pixel q (c a multiple of 4, NHWC input).
fn dw_at4(q: vec3<u32>, c: u32) -> vec4<f32> {
    let b = q.x;
    let oy = q.y;
    let ox = q.z;
    var s = vec4<f32>(0.0);
    for (var ky = 0u; ky < D.kh; ky = ky + 1u) {
        let iy = i32(oy * D.sy + ky * D.dy) - i32(D.py);
        if (iy < 0 || iy >= i32(D.h)) { continue; }
        for (var kx = 0u; kx < D.kw; kx = kx + 1u) {
            let ix = i32(ox * D.sx + kx * D.dx) - i32(D.px);
            if (ix < 0 || ix >= i32(D.w)) { continue; }
            let wb = (ky * D.kw + kx) * D.cout + c;
            let w = vec4<f32>(f32(DW[wb]), f32(DW[wb + 1u]), f32(DW[wb + 2u]), f32(DW[wb + 3u]));
            s = s + vec4<f32>(X4[(b * D.isn + u32(iy) * D.isy + u32(ix) * D.isx) / 4u + c / 4u]) * w;
        }
    }
    if (D.has_bias == 1u) { s = s + vec4<f32>(f32(DB[c]), f32(DB[c + 1u]), f32(DB[c + 2u]), f32(DB[c + 3u])); }
    return vec4<f32>(dw_act(s.x), dw_act(s.y), dw_act(s.z), dw_act(s.w));
}

// Channel c of depthwise output pixel q (any layout).
fn dw_at(q: vec3<u32>, c: u32) -> f32 {
    let b = q.x;
    let oy = q.y;
    let ox = q.z;
    var s = 0.0;
    for (var ky = 0u; ky < D.kh; ky = ky + 1u) {
        let iy = i32(oy * D.sy + ky * D.dy) - i32(D.py);
        if (iy < 0 || iy >= i32(D.h)) { continue; }
        for (var kx = 0u; kx < D.kw; kx = kx + 1u) {
            let ix = i32(ox * D.sx + kx * D.dx) - i32(D.px);
            if (ix < 0 || ix >= i32(D.w)) { continue; }
            s = s + f32(X[b * D.isn + c * D.isc + u32(iy) * D.isy + u32(ix) * D.isx]) * f32(DW[(ky * D.kw + kx) * D.cout + c]);
        }
    }
    if (D.has_bias == 1u) { s = s + f32(DB[c]); }
    return dw_act(s);
}

// The pixels of a thread's A slots, found once per tile (a slot's row is fixed across K).
struct Pix {
    a: array<vec3<u32>, A1>,
    a4: array<vec3<u32>, A4>,
};

fn dwpw_pixels(m0: u32, t: u32) -> Pix {
    var p: Pix;
    for (var i = 0u; i < A1; i = i + 1u) { p.a[i] = dw_pixel(m0 + (t + i * NT) % BM); }
    for (var i = 0u; i < A4; i = i + 1u) { p.a4[i] = dw_pixel(m0 + (t + i * NT) % BM); }
    return p;
}

fn dwpw_fetch_a(k0: u32, m0: u32, M: u32, K: u32, t: u32, px: ptr<function, Pix>, r: ptr<function, Regs>) {
    if (A_VEC) {
        for (var i = 0u; i < A4; i = i + 1u) {
            let idx = t + i * NT;
            let m = m0 + idx % BM;
            let k = k0 + idx / BM * 4u;
            var v = vec4<f32>(0.0);
            if (idx < BK * BM / 4u && m < M && k < K) { v = dw_at4((*px).a4[i], k); }
            (*r).a4[i] = v;
        }
    } else {
        for (var i = 0u; i < A1; i = i + 1u) {
            let idx = t + i * NT;
            let m = m0 + idx % BM;
            let k = k0 + idx / BM;
            var v = 0.0;
            if (idx < BK * BM && m < M && k < K) { v = dw_at((*px).a[i], k); }
            (*r).a[i] = v;
        }
    }
}

@compute @workgroup_size(TX, TY)
fn dwpw_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let M = P.n * P.oh * P.ow;
    let K = P.cpg;
    let tile = tile_at(wg, nw, M, P.opg, BM, BN);
    if (tile.z >= 1u) { return; }
    let t = lid.y * TX + lid.x;
    var acc: array<vec4<f32>, ACC>;
    var r: Regs;
    var px = dwpw_pixels(tile.x, t);
    dwpw_fetch_a(0u, tile.x, M, K, t, &px, &r);
    conv_fetch_b(0u, tile.y, 0u, K, t, &r);
    stash(0u, t, &r);
    workgroupBarrier();
    let steps = (K + BK - 1u) / BK;
    for (var st = 0u; st < steps; st = st + 1u) {
        let s = st % 2u;
        let more = st + 1u < steps;
        if (more) {
            dwpw_fetch_a((st + 1u) * BK, tile.x, M, K, t, &px, &r);
            conv_fetch_b((st + 1u) * BK, tile.y, 0u, K, t, &r);
        }
        mul_stage(s, lid.x, lid.y, &acc);
        if (more) { stash(1u - s, t, &r); }
        workgroupBarrier();
    }
    conv_store(tile, lid, M, &acc);
}

// ---- batched MatMul: bindings 8-13 ----

@group(0) @binding(8) var<uniform> Q: MmP;
@group(0) @binding(9) var<storage, read> MA: array<Fs>;
@group(0) @binding(10) var<storage, read> MB: array<Fs>;
@group(0) @binding(11) var<storage, read_write> MC: array<Fs>;
@group(0) @binding(12) var<storage, read> MA4: array<vec4<Fs>>;
@group(0) @binding(13) var<storage, read> MB4: array<vec4<Fs>>;

fn mm_fetch(k0: u32, m0: u32, n0: u32, z: u32, t: u32, r: ptr<function, Regs>) {
    let ab = z * Q.a_bs;
    let bb = z * Q.b_bs;
    if (A_VEC) {
        for (var i = 0u; i < A4; i = i + 1u) {
            let idx = t + i * NT;
            let m = m0 + idx % BM;
            let k = k0 + idx / BM * 4u;
            var v = vec4<f32>(0.0);
            if (idx < BK * BM / 4u && m < Q.m && k < Q.k) { v = vec4<f32>(MA4[(ab + m * Q.a_rs + k) / 4u]); }
            (*r).a4[i] = v;
        }
    } else {
        for (var i = 0u; i < A1; i = i + 1u) {
            let idx = t + i * NT;
            let m = m0 + idx % BM;
            let k = k0 + idx / BM;
            var v = 0.0;
            if (idx < BK * BM && m < Q.m && k < Q.k) { v = f32(MA[ab + m * Q.a_rs + k * Q.a_cs]); }
            (*r).a[i] = v;
        }
    }
    if (B_VEC) {
        for (var i = 0u; i < B4; i = i + 1u) {
            let idx = t + i * NT;
            let nn = n0 + idx % (BN / 4u) * 4u;
            let k = k0 + idx / (BN / 4u);
            var v = vec4<f32>(0.0);
            if (idx < BS && k < Q.k && nn < Q.n) { v = vec4<f32>(MB4[(bb + k * Q.b_rs + nn) / 4u]); }
            (*r).b4[i] = v;
        }
    } else {
        for (var i = 0u; i < B1; i = i + 1u) {
            let idx = t + i * NT;
            let nn = n0 + idx % BN;
            let k = k0 + idx / BN;
            var v = 0.0;
            if (idx < BK * BN && k < Q.k && nn < Q.n) { v = f32(MB[bb + k * Q.b_rs + nn * Q.b_cs]); }
            (*r).b[i] = v;
        }
    }
}

@compute @workgroup_size(TX, TY)
fn matmul_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let tile = tile_at(wg, nw, Q.m, Q.n, BM, BN);
    if (tile.z >= Q.batch) { return; }
    let t = lid.y * TX + lid.x;
    var acc: array<vec4<f32>, ACC>;
    var r: Regs;
    mm_fetch(0u, tile.x, tile.y, tile.z, t, &r);
    stash(0u, t, &r);
    workgroupBarrier();
    let steps = (Q.k + BK - 1u) / BK;
    for (var st = 0u; st < steps; st = st + 1u) {
        let s = st % 2u;
        let more = st + 1u < steps;
        if (more) { mm_fetch((st + 1u) * BK, tile.x, tile.y, tile.z, t, &r); }
        mul_stage(s, lid.x, lid.y, &acc);
        if (more) { stash(1u - s, t, &r); }
        workgroupBarrier();
    }
    let cb = tile.z * Q.c_bs;
    for (var p = 0u; p < QM; p = p + 1u) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            let m = tile.x + (p * TY + lid.y) * 4u + i;
            if (m >= Q.m) { continue; }
            for (var q = 0u; q < QN; q = q + 1u) {
                let v = acc[(p * 4u + i) * QN + q];
                for (var j = 0u; j < 4u; j = j + 1u) {
                    let nn = tile.y + (q * TX + lid.x) * 4u + j;
                    if (nn < Q.n) { MC[cb + m * Q.n + nn] = to_fs(v[j]); }
                }
            }
        }
    }
}
