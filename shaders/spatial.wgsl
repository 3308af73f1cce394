// Pooling and resizing, one thread per output element, tensors addressed by (n, c, y, x)
// strides (NHWC or NCHW), on storage of type Fs (f32 or f16); taps are f32.

struct SpP {
    n: u32, c: u32, h: u32, w: u32,
    oh: u32, ow: u32, kh: u32, kw: u32,
    sy: u32, sx: u32, py: u32, px: u32,
    kind: u32, include_pad: u32, dy: u32, dx: u32,
    isn: u32, isc: u32, isy: u32, isx: u32,
    osn: u32, osc: u32, osy: u32, osx: u32,
};

@group(0) @binding(0) var<uniform> P: SpP;
@group(0) @binding(1) var<storage, read> X: array<Fs>;
// resize: taps for y (oh x [lo, hi, frac]) then x (ow x [lo, hi, frac])
@group(0) @binding(2) var<storage, read> Taps: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<Fs>;

fn coords(i: u32) -> vec4<u32> {
    let c = i % P.c;
    let t = i / P.c;
    let ox = t % P.ow;
    let t2 = t / P.ow;
    return vec4<u32>(t2 / P.oh, c, t2 % P.oh, ox);
}

fn at(b: u32, c: u32, y: u32, x: u32) -> f32 {
    return f32(X[b * P.isn + c * P.isc + y * P.isy + x * P.isx]);
}

@compute @workgroup_size(256)
fn pool(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n * P.c * P.oh * P.ow) { return; }
    let q = coords(i);
    var acc = 0.0;
    if (P.kind == 0u) { acc = -3.4028235e38; }
    var cnt = 0u;
    for (var ky = 0u; ky < P.kh; ky = ky + 1u) {
        let iy = i32(q.z * P.sy + ky * P.dy) - i32(P.py);
        for (var kx = 0u; kx < P.kw; kx = kx + 1u) {
            let ix = i32(q.w * P.sx + kx * P.dx) - i32(P.px);
            if (iy < 0 || ix < 0 || iy >= i32(P.h) || ix >= i32(P.w)) {
                if (P.include_pad == 1u) { cnt = cnt + 1u; }
                continue;
            }
            let v = at(q.x, q.y, u32(iy), u32(ix));
            cnt = cnt + 1u;
            if (P.kind == 0u) { acc = max(acc, v); } else { acc = acc + v; }
        }
    }
    if (P.kind == 1u) { acc = acc / f32(max(cnt, 1u)); }
    O[q.x * P.osn + q.y * P.osc + q.z * P.osy + q.w * P.osx] = to_fs(acc);
}

@compute @workgroup_size(256)
fn resize(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n * P.c * P.oh * P.ow) { return; }
    let q = coords(i);
    let y0 = u32(Taps[q.z * 3u]);
    let y1 = u32(Taps[q.z * 3u + 1u]);
    let fy = Taps[q.z * 3u + 2u];
    let xb = P.oh * 3u + q.w * 3u;
    let x0 = u32(Taps[xb]);
    let x1 = u32(Taps[xb + 1u]);
    let fx = Taps[xb + 2u];
    let tl = at(q.x, q.y, y0, x0);
    let tr = at(q.x, q.y, y0, x1);
    let bl = at(q.x, q.y, y1, x0);
    let br = at(q.x, q.y, y1, x1);
    let top = tl + (tr - tl) * fx;
    let bot = bl + (br - bl) * fx;
    O[q.x * P.osn + q.y * P.osc + q.z * P.osy + q.w * P.osx] = to_fs(top + (bot - top) * fy);
}
