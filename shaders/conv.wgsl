// Convolution as a tiled implicit GEMM (M = N*OH*OW output pixels, N = output channels of
// a group, K = KH*KW*Cin/groups), 64x64 tiles, 16x16 threads each computing 4x4 outputs,
// with bias, activation and residual add fused into the epilogue; and a dedicated
// depthwise kernel. Tensors are addressed through (n, c, y, x) strides, so NHWC and NCHW
// share the code. Weights are HWIO: index ((ky * KW + kx) * cpg + ci) * cout + oc. Storage is
// of type Fs (f32, or f16 at precision f16: `kernels::shader_source_as`); sums are f32.

@group(0) @binding(0) var<uniform> P: ConvP;
@group(0) @binding(1) var<storage, read> X: array<Fs>;
@group(0) @binding(2) var<storage, read> Wt: array<Fs>;
@group(0) @binding(3) var<storage, read> Bias: array<Fs>;
@group(0) @binding(4) var<storage, read> Res: array<Fs>;
@group(0) @binding(5) var<storage, read_write> O: array<Fs>;

fn act(x: f32) -> f32 {
    return act_fn(x, P.act, P.p0, P.p1);
}

fn finish(v0: f32, oc: u32, oidx: u32) -> f32 {
    var v = v0;
    if (P.has_bias == 1u) { v = v + f32(Bias[oc]); }
    if (P.res_mode == 1u) { return act(v + f32(Res[oidx])); }
    if (P.res_mode == 2u) { return act(v) + f32(Res[oidx]); }
    return act(v);
}

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> As: array<f32, 1024>;
var<workgroup> Bs: array<f32, 1024>;

fn a_val(m: u32, k: u32, g: u32, M: u32, K: u32) -> f32 {
    if (m >= M || k >= K) { return 0.0; }
    let at = conv_tap(P, m, k, g);
    if (at < 0) { return 0.0; }
    return f32(X[u32(at)]);
}

@compute @workgroup_size(16, 16)
fn conv_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let M = P.n * P.oh * P.ow;
    let K = P.kh * P.kw * P.cpg;
    let g = wg.z;
    let m0 = wg.y * TM;
    let n0 = wg.x * TN;
    let t = lid.y * 16u + lid.x;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) { acc[i][j] = 0.0; }
    }
    for (var k0 = 0u; k0 < K; k0 = k0 + TK) {
        for (var r = 0u; r < 4u; r = r + 1u) {
            let idx = t + r * 256u;
            let kk = idx / TM;
            let mm = idx % TM;
            As[idx] = a_val(m0 + mm, k0 + kk, g, M, K);
            let nn = idx % TN;
            let kb = k0 + idx / TN;
            var bv = 0.0;
            if (kb < K && n0 + nn < P.opg) {
                bv = f32(Wt[kb * P.cout + g * P.opg + n0 + nn]);
            }
            Bs[idx] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk = kk + 1u) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                a[i] = As[kk * TM + lid.y * 4u + i];
                b[i] = Bs[kk * TN + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i][j] = acc[i][j] + a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        let m = m0 + lid.y * 4u + i;
        if (m >= M) { continue; }
        let ox = m % P.ow;
        let tt = m / P.ow;
        let oy = tt % P.oh;
        let b = tt / P.oh;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let nn = n0 + lid.x * 4u + j;
            if (nn >= P.opg) { continue; }
            let oc = g * P.opg + nn;
            let oidx = b * P.osn + oc * P.osc + oy * P.osy + ox * P.osx;
            O[oidx] = to_fs(finish(acc[i][j], oc, oidx));
        }
    }
}

// One thread per output element; channel multiplier 1 (cout == cin == groups).
@compute @workgroup_size(256)
fn depthwise(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    let total = P.n * P.cout * P.oh * P.ow;
    if (i >= total) { return; }
    // enumerate with the channel fastest (coalesced for NHWC)
    let c = i % P.cout;
    let t = i / P.cout;
    let ox = t % P.ow;
    let t2 = t / P.ow;
    let oy = t2 % P.oh;
    let b = t2 / P.oh;
    var s = 0.0;
    for (var ky = 0u; ky < P.kh; ky = ky + 1u) {
        let iy = i32(oy * P.sy + ky * P.dy) - i32(P.py);
        if (iy < 0 || iy >= i32(P.h)) { continue; }
        for (var kx = 0u; kx < P.kw; kx = kx + 1u) {
            let ix = i32(ox * P.sx + kx * P.dx) - i32(P.px);
            if (ix < 0 || ix >= i32(P.w)) { continue; }
            s = s + f32(X[b * P.isn + c * P.isc + u32(iy) * P.isy + u32(ix) * P.isx]) * f32(Wt[(ky * P.kw + kx) * P.cout + c]);
        }
    }
    let oidx = b * P.osn + c * P.osc + oy * P.osy + ox * P.osx;
    O[oidx] = to_fs(finish(s, c, oidx));
}

// Transposed convolution (NCHW strides), gathered per output element: weights are ONNX's
// [cin, cout / groups, kh, kw]; cpg = input channels per group, opg = outputs per group.
@compute @workgroup_size(256)
fn conv_transpose(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n * P.cout * P.oh * P.ow) { return; }
    let ox = i % P.ow;
    let t = i / P.ow;
    let oy = t % P.oh;
    let t2 = t / P.oh;
    let oc = t2 % P.cout;
    let b = t2 / P.cout;
    let g = oc / P.opg;
    let ocg = oc % P.opg;
    var s = 0.0;
    if (P.has_bias == 1u) { s = f32(Bias[oc]); }
    for (var ci = g * P.cpg; ci < (g + 1u) * P.cpg; ci = ci + 1u) {
        for (var ky = 0u; ky < P.kh; ky = ky + 1u) {
            let ty = i32(oy + P.py) - i32(ky * P.dy);
            if (ty < 0 || ty % i32(P.sy) != 0) { continue; }
            let iy = u32(ty) / P.sy;
            if (iy >= P.h) { continue; }
            for (var kx = 0u; kx < P.kw; kx = kx + 1u) {
                let tx = i32(ox + P.px) - i32(kx * P.dx);
                if (tx < 0 || tx % i32(P.sx) != 0) { continue; }
                let ix = u32(tx) / P.sx;
                if (ix >= P.w) { continue; }
                s = s + f32(X[b * P.isn + ci * P.isc + iy * P.isy + ix * P.isx]) * f32(Wt[((ci * P.opg + ocg) * P.kh + ky) * P.kw + kx]);
            }
        }
    }
    O[b * P.osn + oc * P.osc + oy * P.osy + ox * P.osx] = to_fs(s);
}
