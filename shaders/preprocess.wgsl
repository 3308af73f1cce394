// Letterbox preprocessing: a batch of packed u8 RGB frames of any sizes -> the model input
// tensor ([B, H, W, 3] or [B, 3, H, W], f32 or i32), aspect kept, centred, black bars,
// bilinear (half-pixel) sampling, (v - mean) / std per channel.

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

fn byte_at(off: u32, i: u32) -> f32 {
    let word = Pix[off + i / 4u];
    return f32((word >> ((i % 4u) * 8u)) & 255u);
}

@compute @workgroup_size(256)
fn letterbox(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.b * P.h * P.w * 3u) { return; }
    var b: u32;
    var y: u32;
    var x: u32;
    var c: u32;
    if (P.nchw == 0u) {
        c = i % 3u;
        let t = i / 3u;
        x = t % P.w;
        y = (t / P.w) % P.h;
        b = t / (P.w * P.h);
    } else {
        x = i % P.w;
        let t = i / P.w;
        y = t % P.h;
        c = (t / P.h) % 3u;
        b = t / (P.h * 3u);
    }
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
    let r = (v - P.mean[c]) * P.inv_std[c];
    if (P.dtype == 0u) {
        O[i] = bitcast<u32>(r);
    } else {
        O[i] = bitcast<u32>(i32(round(r)));
    }
}
