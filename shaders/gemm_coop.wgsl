enable f16;
enable wgpu_cooperative_matrix;

// GEMM on cooperative matrices (`runtime::gpu::tiles`, wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX
// on Vulkan's VK_KHR_cooperative_matrix, which is how NVIDIA tensor cores are reached):
// convolution as implicit GEMM (`conv_coop`) and batched MatMul (`matmul_coop`) with f16
// operands and f32 accumulation. Compiled only where the adapter offers a 16x16x16
// f16 -> f32 configuration, and used only when asked for (`WALKOUT_GPU_TILES=coop`): f16
// operands change results at the 1e-3 level, which f32 models do not opt into. Storage is of
// type Fs: f32, or f16 in a plan at precision f16 (the tensor-core path proper: f16 in
// memory and in the multiply, f32 in the sums).
//
// A workgroup of 128 invocations computes a 64x64 tile in K steps of 32: the operands are
// converted to f16 into workgroup memory, each subgroup takes 32x32 quarters of the tile
// (4 with 32-wide subgroups) and multiplies them as 2x2 16x16 cooperative matrices, adding
// into an f32 tile in workgroup memory; the epilogue (bias, activation, residual) runs on
// that tile. Bindings and parameter blocks are gemm.wgsl's.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 32u;
const WG: u32 = 128u;

var<workgroup> Ah: array<f16, 2048>;  // BM x BK, row-major
var<workgroup> Bh: array<f16, 2048>;  // BK x BN, row-major
var<workgroup> Cs: array<f32, 4096>;  // BM x BN, row-major

// The stage's quarters of the tile, on the subgroup's cooperative matrices.
fn mma(sg: u32, nsg: u32) {
    for (var s = sg; s < 4u; s = s + nsg) {
        let r0 = s / 2u * 32u;
        let c0 = s % 2u * 32u;
        var c00 = coopLoadT<coop_mat16x16<f32, C>>(&Cs[r0 * BN + c0], BN);
        var c01 = coopLoadT<coop_mat16x16<f32, C>>(&Cs[r0 * BN + c0 + 16u], BN);
        var c10 = coopLoadT<coop_mat16x16<f32, C>>(&Cs[(r0 + 16u) * BN + c0], BN);
        var c11 = coopLoadT<coop_mat16x16<f32, C>>(&Cs[(r0 + 16u) * BN + c0 + 16u], BN);
        for (var kk = 0u; kk < BK; kk = kk + 16u) {
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&Ah[r0 * BK + kk], BK);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&Ah[(r0 + 16u) * BK + kk], BK);
            let b0 = coopLoadT<coop_mat16x16<f16, B>>(&Bh[kk * BN + c0], BN);
            let b1 = coopLoadT<coop_mat16x16<f16, B>>(&Bh[kk * BN + c0 + 16u], BN);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
        }
        coopStoreT(c00, &Cs[r0 * BN + c0], BN);
        coopStoreT(c01, &Cs[r0 * BN + c0 + 16u], BN);
        coopStoreT(c10, &Cs[(r0 + 16u) * BN + c0], BN);
        coopStoreT(c11, &Cs[(r0 + 16u) * BN + c0 + 16u], BN);
    }
}

fn clear(li: u32) {
    for (var i = li; i < BM * BN; i = i + WG) { Cs[i] = 0.0; }
}

// ---- convolution: gemm.wgsl's bindings 0-5 ----

@group(0) @binding(0) var<uniform> P: ConvP;
@group(0) @binding(1) var<storage, read> X: array<Fs>;
@group(0) @binding(2) var<storage, read> Wt: array<Fs>;
@group(0) @binding(3) var<storage, read> Bias: array<Fs>;
@group(0) @binding(4) var<storage, read> Res: array<Fs>;
@group(0) @binding(5) var<storage, read_write> O: array<Fs>;

fn conv_a(m: u32, k: u32, g: u32, M: u32, K: u32) -> f32 {
    if (m >= M || k >= K) { return 0.0; }
    let at = conv_tap(P, m, k, g);
    if (at < 0) { return 0.0; }
    return f32(X[u32(at)]);
}

@compute @workgroup_size(128)
fn conv_coop(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
             @builtin(local_invocation_index) li: u32, @builtin(subgroup_id) sg: u32,
             @builtin(num_subgroups) nsg: u32) {
    let M = P.n * P.oh * P.ow;
    let K = P.kh * P.kw * P.cpg;
    let tile = tile_at(wg, nw, M, P.opg, BM, BN);
    if (tile.z >= P.groups) { return; }
    clear(li);
    for (var k0 = 0u; k0 < K; k0 = k0 + BK) {
        for (var i = li; i < BM * BK; i = i + WG) {
            Ah[i] = f16(conv_a(tile.x + i / BK, k0 + i % BK, tile.z, M, K));
        }
        for (var i = li; i < BK * BN; i = i + WG) {
            let k = k0 + i / BN;
            let nn = tile.y + i % BN;
            var v = 0.0;
            if (k < K && nn < P.opg) { v = f32(Wt[k * P.cout + tile.z * P.opg + nn]); }
            Bh[i] = f16(v);
        }
        workgroupBarrier();
        mma(sg, nsg);
        workgroupBarrier();
    }
    for (var i = li; i < BM * BN; i = i + WG) {
        let m = tile.x + i / BN;
        let nn = tile.y + i % BN;
        if (m >= M || nn >= P.opg) { continue; }
        let ox = m % P.ow;
        let tt = m / P.ow;
        let oy = tt % P.oh;
        let b = tt / P.oh;
        let oc = tile.z * P.opg + nn;
        let oidx = b * P.osn + oc * P.osc + oy * P.osy + ox * P.osx;
        var v = Cs[i];
        if (P.has_bias == 1u) { v = v + f32(Bias[oc]); }
        if (P.res_mode == 1u) {
            O[oidx] = to_fs(act_fn(v + f32(Res[oidx]), P.act, P.p0, P.p1));
        } else if (P.res_mode == 2u) {
            O[oidx] = to_fs(act_fn(v, P.act, P.p0, P.p1) + f32(Res[oidx]));
        } else {
            O[oidx] = to_fs(act_fn(v, P.act, P.p0, P.p1));
        }
    }
}

// ---- batched MatMul: gemm.wgsl's bindings 8-11 ----

@group(0) @binding(8) var<uniform> Q: MmP;
@group(0) @binding(9) var<storage, read> MA: array<Fs>;
@group(0) @binding(10) var<storage, read> MB: array<Fs>;
@group(0) @binding(11) var<storage, read_write> MC: array<Fs>;

@compute @workgroup_size(128)
fn matmul_coop(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
               @builtin(local_invocation_index) li: u32, @builtin(subgroup_id) sg: u32,
               @builtin(num_subgroups) nsg: u32) {
    let tile = tile_at(wg, nw, Q.m, Q.n, BM, BN);
    if (tile.z >= Q.batch) { return; }
    let ab = tile.z * Q.a_bs;
    let bb = tile.z * Q.b_bs;
    clear(li);
    for (var k0 = 0u; k0 < Q.k; k0 = k0 + BK) {
        for (var i = li; i < BM * BK; i = i + WG) {
            let m = tile.x + i / BK;
            let k = k0 + i % BK;
            var v = 0.0;
            if (m < Q.m && k < Q.k) { v = f32(MA[ab + m * Q.a_rs + k * Q.a_cs]); }
            Ah[i] = f16(v);
        }
        for (var i = li; i < BK * BN; i = i + WG) {
            let k = k0 + i / BN;
            let nn = tile.y + i % BN;
            var v = 0.0;
            if (k < Q.k && nn < Q.n) { v = f32(MB[bb + k * Q.b_rs + nn * Q.b_cs]); }
            Bh[i] = f16(v);
        }
        workgroupBarrier();
        mma(sg, nsg);
        workgroupBarrier();
    }
    let cb = tile.z * Q.c_bs;
    for (var i = li; i < BM * BN; i = i + WG) {
        let m = tile.x + i / BN;
        let nn = tile.y + i % BN;
        if (m < Q.m && nn < Q.n) { MC[cb + m * Q.n + nn] = to_fs(Cs[i]); }
    }
}
