// Letterbox preprocessing: a batch of packed u8 RGB frames of any sizes -> the model input
// tensor ([B, H, W, 3] or [B, 3, H, W], f32 or i32), aspect kept, centred, black bars,
// bilinear (half-pixel) sampling, (v - mean) / std per channel. Below it, person crops.

struct PreP {
    b: u32, h: u32, w: u32, nchw: u32,
    dtype: u32, pad0: u32, pad1: u32, pad2: u32,
    mean: vec4<f32>,
    inv_std: vec4<f32>,
};

// per frame: word offset, src w, src h, resized w, resized h, pad x, pad y, unused
@group(0) @binding(0) var<uniform> P: PreP;
@group(0) @binding(1) var<storage, read> Pix: array<u32>;
@group(0) @binding(2) var<storage, read> Meta: array<u32>;
@group(0) @binding(3) var<storage, read_write> O: array<u32>;

// (item, y, x, channel) of output word i in the input's layout
fn position(i: u32) -> vec4<u32> {
    if (P.nchw == 0u) {
        let t = i / 3u;
        return vec4<u32>(t / (P.w * P.h), (t / P.w) % P.h, t % P.w, i % 3u);
    }
    let t = i / P.w;
    return vec4<u32>(t / (P.h * 3u), t % P.h, i % P.w, (t / P.h) % 3u);
}

// output word i: the 0..255 value v of channel c normalised, as f32 or rounded i32
fn store(i: u32, v: f32, c: u32) {
    let r = (v - P.mean[c]) * P.inv_std[c];
    if (P.dtype == 0u) {
        O[i] = bitcast<u32>(r);
    } else {
        O[i] = bitcast<u32>(i32(round(r)));
    }
}

fn byte_at(off: u32, i: u32) -> f32 {
    let word = Pix[off + i / 4u];
    return f32((word >> ((i % 4u) * 8u)) & 255u);
}

@compute @workgroup_size(256)
fn letterbox(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.b * P.h * P.w * 3u) { return; }
    let q = position(i);
    let b = q.x;
    let y = q.y;
    let x = q.z;
    let c = q.w;
    let m = b * 8u;
    let off = Meta[m];
    let sw = Meta[m + 1u];
    let sh = Meta[m + 2u];
    let rw = Meta[m + 3u];
    let rh = Meta[m + 4u];
    let px = Meta[m + 5u];
    let py = Meta[m + 6u];
    var v = 0.0;
    if (x >= px && x < px + rw && y >= py && y < py + rh) {
        let fx = clamp((f32(x - px) + 0.5) * f32(sw) / f32(rw) - 0.5, 0.0, f32(sw - 1u));
        let fy = clamp((f32(y - py) + 0.5) * f32(sh) / f32(rh) - 0.5, 0.0, f32(sh - 1u));
        let x0 = u32(floor(fx));
        let y0 = u32(floor(fy));
        let x1 = min(x0 + 1u, sw - 1u);
        let y1 = min(y0 + 1u, sh - 1u);
        let ax = fx - f32(x0);
        let ay = fy - f32(y0);
        let tl = byte_at(off, (y0 * sw + x0) * 3u + c);
        let tr = byte_at(off, (y0 * sw + x1) * 3u + c);
        let bl = byte_at(off, (y1 * sw + x0) * 3u + c);
        let br = byte_at(off, (y1 * sw + x1) * 3u + c);
        let top = tl + (tr - tl) * ax;
        let bot = bl + (br - bl) * ax;
        v = top + (bot - top) * ay;
    }
    store(i, v, c);
}

// Person crops for re-identification (`vision::crop`, the same arithmetic): each output
// pixel of crop b averages four bilinear samples spread over its footprint in the crop's
// rectangle of its frame (already widened to the model's aspect; edges clamped). A crop
// whose frame is missing (padding up to the batch) is all zeros.
// per crop: word offset, src w, src h, valid, then x0, y0, width, height as f32 bits
fn bilinear_at(off: u32, sw: u32, sh: u32, x: f32, y: f32, c: u32) -> f32 {
    let fx = clamp(x - 0.5, 0.0, f32(sw - 1u));
    let fy = clamp(y - 0.5, 0.0, f32(sh - 1u));
    let x0 = u32(floor(fx));
    let y0 = u32(floor(fy));
    let x1 = min(x0 + 1u, sw - 1u);
    let y1 = min(y0 + 1u, sh - 1u);
    let ax = fx - f32(x0);
    let ay = fy - f32(y0);
    let top = byte_at(off, (y0 * sw + x0) * 3u + c) * (1.0 - ax) + byte_at(off, (y0 * sw + x1) * 3u + c) * ax;
    let bot = byte_at(off, (y1 * sw + x0) * 3u + c) * (1.0 - ax) + byte_at(off, (y1 * sw + x1) * 3u + c) * ax;
    return top * (1.0 - ay) + bot * ay;
}

@compute @workgroup_size(256)
fn crop(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.b * P.h * P.w * 3u) { return; }
    let q = position(i);
    let b = q.x;
    let y = q.y;
    let x = q.z;
    let c = q.w;
    let m = b * 8u;
    if (Meta[m + 3u] == 0u) {
        O[i] = 0u;
        return;
    }
    let off = Meta[m];
    let sw = Meta[m + 1u];
    let sh = Meta[m + 2u];
    let rx = bitcast<f32>(Meta[m + 4u]);
    let ry = bitcast<f32>(Meta[m + 5u]);
    let step_x = bitcast<f32>(Meta[m + 6u]) / f32(P.w);
    let step_y = bitcast<f32>(Meta[m + 7u]) / f32(P.h);
    var v = 0.0;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let dx = select(0.25, 0.75, (k & 1u) == 1u);
        let dy = select(0.25, 0.75, k >= 2u);
        v = v + bilinear_at(off, sw, sh, rx + (f32(x) + dx) * step_x, ry + (f32(y) + dy) * step_y, c) / 4.0;
    }
    store(i, v, c);
}
