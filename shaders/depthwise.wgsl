// Depthwise convolution for NHWC tensors whose channels are a multiple of 4
// (`runtime::gpu::tiles`, wgpu only): each thread computes 4 channels (one vec4) of OX
// horizontally neighbouring outputs, so the input columns the outputs share are loaded once,
// and every load and store is a vec4. Bias, activation and residual are fused as in
// conv.wgsl's `depthwise`, with the same sum order over the taps. Storage is of type Fs (f32
// or f16), sums f32.

const OX: u32 = 4u;

@group(0) @binding(0) var<uniform> P: ConvP;
@group(0) @binding(1) var<storage, read> X4: array<vec4<Fs>>;
@group(0) @binding(2) var<storage, read> W4: array<vec4<Fs>>;
@group(0) @binding(3) var<storage, read> Bias: array<Fs>;
@group(0) @binding(4) var<storage, read> Res4: array<vec4<Fs>>;
@group(0) @binding(5) var<storage, read_write> O4: array<vec4<Fs>>;

fn act4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(act_fn(v.x, P.act, P.p0, P.p1), act_fn(v.y, P.act, P.p0, P.p1),
                     act_fn(v.z, P.act, P.p0, P.p1), act_fn(v.w, P.act, P.p0, P.p1));
}

@compute @workgroup_size(256)
fn depthwise_v4(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    let cq = P.cout / 4u;
    let xs = (P.ow + OX - 1u) / OX;
    if (i >= P.n * P.oh * xs * cq) { return; }
    let c4 = i % cq;
    let t = i / cq;
    let ox0 = t % xs * OX;
    let t2 = t / xs;
    let oy = t2 % P.oh;
    let b = t2 / P.oh;
    var s: array<vec4<f32>, OX>;
    for (var ky = 0u; ky < P.kh; ky = ky + 1u) {
        let iy = i32(oy * P.sy + ky * P.dy) - i32(P.py);
        if (iy < 0 || iy >= i32(P.h)) { continue; }
        let row = b * P.isn + u32(iy) * P.isy;
        for (var kx = 0u; kx < P.kw; kx = kx + 1u) {
            let wv = vec4<f32>(W4[(ky * P.kw + kx) * cq + c4]);
            for (var o = 0u; o < OX; o = o + 1u) {
                let ix = i32((ox0 + o) * P.sx + kx * P.dx) - i32(P.px);
                if (ix < 0 || ix >= i32(P.w)) { continue; }
                s[o] = s[o] + vec4<f32>(X4[(row + u32(ix) * P.isx) / 4u + c4]) * wv;
            }
        }
    }
    var bias = vec4<f32>(0.0);
    if (P.has_bias == 1u) {
        bias = vec4<f32>(f32(Bias[c4 * 4u]), f32(Bias[c4 * 4u + 1u]), f32(Bias[c4 * 4u + 2u]), f32(Bias[c4 * 4u + 3u]));
    }
    for (var o = 0u; o < OX; o = o + 1u) {
        let ox = ox0 + o;
        if (ox >= P.ow) { break; }
        let at = (b * P.osn + oy * P.osy + ox * P.osx) / 4u + c4;
        let v = s[o] + bias;
        if (P.res_mode == 1u) {
            O4[at] = to_fs4(act4(v + vec4<f32>(Res4[at])));
        } else if (P.res_mode == 2u) {
            O4[at] = to_fs4(act4(v) + vec4<f32>(Res4[at]));
        } else {
            O4[at] = to_fs4(act4(v));
        }
    }
}
