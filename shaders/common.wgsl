// Shared preamble, prepended to every kernel file when it is compiled
// (`runtime::gpu::kernels::shader_source`).

// The 1-D index of a thread in a launch of workgroups of 256 threads folded into 2-D past
// the dispatch limit (`groups_1d` on the host).
fn gid(id: vec3<u32>, nw: vec3<u32>) -> u32 {
    return id.x + id.y * nw.x * 256u;
}

// Activations by code (graph::Activation; codes in kernels/elementwise.rs act_code), shared by
// the conv epilogue and the elementwise kernels.
fn act_fn(x: f32, code: u32, p0: f32, p1: f32) -> f32 {
    switch code {
        case 1u: { return max(x, 0.0); }
        case 2u: { return clamp(x, 0.0, 6.0); }
        case 3u: { return min(max(x, p0), p1); }
        case 4u: { return 1.0 / (1.0 + exp(-x)); }
        case 5u: { return select(x, x * p0, x < 0.0); }
        case 6u: { return clamp(p0 * x + p1, 0.0, 1.0); }
        case 7u: { return x * clamp(x / 6.0 + 0.5, 0.0, 1.0); }
        case 8u: { return select(p0 * (exp(min(x, 0.0)) - 1.0), x, x > 0.0); }
        case 9u: { return p1 * select(p0 * (exp(min(x, 0.0)) - 1.0), x, x > 0.0); }
        case 10u: { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
        case 11u: { return x / (1.0 + abs(x)); }
        case 12u: { return select(select(0.0, x + p1, x < -p0), x - p1, x > p0); }
        case 13u: { return sign(x); }
        default: { return x; }
    }
}

// The parameter blocks of the convolution and GEMM kernels (conv.wgsl, matmul.wgsl and the
// tuned gemm.wgsl, gemm_coop.wgsl, depthwise.wgsl), shared so each is written once.
struct ConvP {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, kh: u32,
    kw: u32, sy: u32, sx: u32, dy: u32,
    dx: u32, py: u32, px: u32, groups: u32,
    isn: u32, isc: u32, isy: u32, isx: u32,
    osn: u32, osc: u32, osy: u32, osx: u32,
    act: u32, res_mode: u32, has_bias: u32, cpg: u32,
    p0: f32, p1: f32, opg: u32, pad: u32,
};

struct MmP {
    m: u32, n: u32, k: u32, batch: u32,
    // element strides: A row, A col, B row, B col
    a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
    // per-batch offsets (0 for a broadcast operand)
    a_bs: u32, b_bs: u32, c_bs: u32, pad: u32,
};

// Element offset of input pixel (m, tap k) of group g of an implicit-GEMM convolution, or -1
// where the tap falls in the padding.
fn conv_tap(p: ConvP, m: u32, k: u32, g: u32) -> i32 {
    let ox = m % p.ow;
    let t = m / p.ow;
    let oy = t % p.oh;
    let b = t / p.oh;
    let ci = k % p.cpg;
    let t2 = k / p.cpg;
    let kx = t2 % p.kw;
    let ky = t2 / p.kw;
    let iy = i32(oy * p.sy + ky * p.dy) - i32(p.py);
    let ix = i32(ox * p.sx + kx * p.dx) - i32(p.px);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return -1; }
    return i32(b * p.isn + (g * p.cpg + ci) * p.isc + u32(iy) * p.isy + u32(ix) * p.isx);
}

// (first row, first column, group or batch) of a GEMM tile of bm x bn for workgroups numbered
// linearly (N tiles fastest, then M tiles) and folded into 2-D.
fn tile_at(wg: vec3<u32>, nw: vec3<u32>, m: u32, n: u32, bm: u32, bn: u32) -> vec3<u32> {
    let id = wg.y * nw.x + wg.x;
    let nt = (n + bn - 1u) / bn;
    let mt = (m + bm - 1u) / bm;
    return vec3<u32>((id / nt) % mt * bm, id % nt * bn, id / (nt * mt));
}

// Elementwise kernels (elementwise.wgsl on words, half.wgsl on f16 or f32 storage): the
// parameter block, the broadcast offsets of the two operands, and the ops by code.
struct ElemP {
    n: u32,
    rank: u32,
    op: u32,
    flags: u32,
    p0: f32,
    p1: f32,
    pad0: u32,
    pad1: u32,
    shape: array<vec4<u32>, 2>,
    sa: array<vec4<u32>, 2>,
    sb: array<vec4<u32>, 2>,
};

fn elem_at4(v: array<vec4<u32>, 2>, i: u32) -> u32 {
    return v[i / 4u][i % 4u];
}

// Offsets into the two operands for output element i.
fn elem_offsets(p: ElemP, i: u32) -> vec2<u32> {
    var rem = i;
    var oa = 0u;
    var ob = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let s = elem_at4(p.shape, u32(d));
        let k = rem % s;
        rem = rem / s;
        oa = oa + k * elem_at4(p.sa, u32(d));
        ob = ob + k * elem_at4(p.sb, u32(d));
    }
    return vec2<u32>(oa, ob);
}

// Arithmetic binary ops by code: 0 add 1 sub 2 mul 3 div 4 floordiv 5 max 6 min 7 pow
// 8 sqdiff 9 prelu 17 mod (10..16 are the comparisons of cmp_f).
fn bin_f(a: f32, b: f32, op: u32) -> f32 {
    switch op {
        case 0u: { return a + b; }
        case 1u: { return a - b; }
        case 2u: { return a * b; }
        case 3u: { return a / b; }
        case 4u: { return floor(a / b); }
        case 5u: { return max(a, b); }
        case 6u: { return min(a, b); }
        case 7u: { return pow(a, b); }
        case 8u: { return (a - b) * (a - b); }
        case 9u: { return select(a, a * b, a < 0.0); }
        case 17u: { return a - floor(a / b) * b; }
        default: { return a; }
    }
}

// Comparisons and logic by code (10 eq 11 lt 12 le 13 gt 14 ge 15 and 16 or), as u32 0/1.
fn cmp_f(a: f32, b: f32, op: u32) -> u32 {
    switch op {
        case 10u: { return select(0u, 1u, a == b); }
        case 11u: { return select(0u, 1u, a < b); }
        case 12u: { return select(0u, 1u, a <= b); }
        case 13u: { return select(0u, 1u, a > b); }
        case 14u: { return select(0u, 1u, a >= b); }
        case 15u: { return select(0u, 1u, a != 0.0 && b != 0.0); }
        default: { return select(0u, 1u, a != 0.0 || b != 0.0); }
    }
}

fn erf_approx(x: f32) -> f32 {
    // Numerical Recipes erfc approximation (|error| < 1.2e-7), as the CPU kernel
    let t = 1.0 / (1.0 + 0.5 * abs(x));
    let y = 1.0 - t * exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return select(-y, y, x >= 0.0);
}

// Unary ops by code: 0..15 in UnOp order (kernels/elementwise.rs un_code), 100+ = activation.
fn un_f(x: f32, op: u32, p0: f32, p1: f32) -> f32 {
    switch op {
        case 0u: { return abs(x); }
        case 1u: { return -x; }
        case 2u: { return exp(x); }
        case 3u: { return log(x); }
        case 4u: { return sqrt(x); }
        case 5u: { return inverseSqrt(x); }
        case 6u: { return 1.0 / x; }
        case 7u: { return floor(x); }
        case 8u: { return ceil(x); }
        case 9u: { return tanh(x); }
        case 11u: { return erf_approx(x); }
        default: { return act_fn(x, op - 100u, p0, p1); }
    }
}
