// Preprocessing (shaders/preprocess.wgsl): a batch of packed u8 RGB frames of any sizes ->
// the model input ([B, H, W, 3] or [B, 3, H, W], f32 or i32), aspect kept, centred, black
// bars, bilinear (half-pixel) sampling, (v - mean) / std per channel; and person crops,
// each output pixel averaging four bilinear samples over its footprint. Only u8 frames
// cross to the device.

typedef struct {
    uint b, h, w, nchw, dtype, pad0, pad1, pad2;
    float mean[4], inv_std[4];
} PreP;

// (item, y, x, channel) of output word i in the input's layout
inline uint4 pre_position(__constant PreP* P, uint i) {
    if (P->nchw == 0u) {
        uint t = i / 3u;
        return (uint4)(t / (P->w * P->h), (t / P->w) % P->h, t % P->w, i % 3u);
    }
    uint t = i / P->w;
    return (uint4)(t / (P->h * 3u), t % P->h, i % P->w, (t / P->h) % 3u);
}

// output word i: the 0..255 value v of channel c normalised, as f32 or rounded i32
inline void pre_store(__constant PreP* P, __global uint* O, uint i, float v, uint c) {
    float r = (v - P->mean[c]) * P->inv_std[c];
    O[i] = P->dtype == 0u ? as_uint(r) : as_uint((int)round(r));
}

inline float byte_at(__global const uint* Pix, uint off, uint i) {
    return (float)((Pix[off + i / 4u] >> ((i % 4u) * 8u)) & 255u);
}

// per frame in Meta: word offset, src w, src h, resized w, resized h, pad x, pad y, unused
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void letterbox(__constant PreP* P, __global const uint* Pix, __global const uint* Meta, __global uint* O) {
    uint i = gid2();
    if (i >= P->b * P->h * P->w * 3u) return;
    uint4 q = pre_position(P, i);
    uint x = q.z, y = q.y, c = q.w, m = q.x * 8u;
    uint off = Meta[m], sw = Meta[m + 1u], sh = Meta[m + 2u], rw = Meta[m + 3u], rh = Meta[m + 4u], px = Meta[m + 5u],
         py = Meta[m + 6u];
    float v = 0.0f;
    if (x >= px && x < px + rw && y >= py && y < py + rh) {
        float fx = clamp(((float)(x - px) + 0.5f) * (float)sw / (float)rw - 0.5f, 0.0f, (float)(sw - 1u));
        float fy = clamp(((float)(y - py) + 0.5f) * (float)sh / (float)rh - 0.5f, 0.0f, (float)(sh - 1u));
        uint x0 = (uint)floor(fx), y0 = (uint)floor(fy);
        uint x1 = min(x0 + 1u, sw - 1u), y1 = min(y0 + 1u, sh - 1u);
        float ax = fx - (float)x0, ay = fy - (float)y0;
        float tl = byte_at(Pix, off, (y0 * sw + x0) * 3u + c), tr = byte_at(Pix, off, (y0 * sw + x1) * 3u + c);
        float bl = byte_at(Pix, off, (y1 * sw + x0) * 3u + c), br = byte_at(Pix, off, (y1 * sw + x1) * 3u + c);
        float top = tl + (tr - tl) * ax, bot = bl + (br - bl) * ax;
        v = top + (bot - top) * ay;
    }
    pre_store(P, O, i, v, c);
}

inline float bilinear_at(__global const uint* Pix, uint off, uint sw, uint sh, float x, float y, uint c) {
    float fx = clamp(x - 0.5f, 0.0f, (float)(sw - 1u)), fy = clamp(y - 0.5f, 0.0f, (float)(sh - 1u));
    uint x0 = (uint)floor(fx), y0 = (uint)floor(fy);
    uint x1 = min(x0 + 1u, sw - 1u), y1 = min(y0 + 1u, sh - 1u);
    float ax = fx - (float)x0, ay = fy - (float)y0;
    float top = byte_at(Pix, off, (y0 * sw + x0) * 3u + c) * (1.0f - ax) + byte_at(Pix, off, (y0 * sw + x1) * 3u + c) * ax;
    float bot = byte_at(Pix, off, (y1 * sw + x0) * 3u + c) * (1.0f - ax) + byte_at(Pix, off, (y1 * sw + x1) * 3u + c) * ax;
    return top * (1.0f - ay) + bot * ay;
}

// per crop in Meta: word offset, src w, src h, valid, then x0, y0, width, height as f32 bits
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void crop(__constant PreP* P, __global const uint* Pix, __global const uint* Meta, __global uint* O) {
    uint i = gid2();
    if (i >= P->b * P->h * P->w * 3u) return;
    uint4 q = pre_position(P, i);
    uint x = q.z, y = q.y, c = q.w, m = q.x * 8u;
    if (Meta[m + 3u] == 0u) {
        O[i] = 0u;
        return;
    }
    uint off = Meta[m], sw = Meta[m + 1u], sh = Meta[m + 2u];
    float rx = as_float(Meta[m + 4u]), ry = as_float(Meta[m + 5u]);
    float step_x = as_float(Meta[m + 6u]) / (float)P->w, step_y = as_float(Meta[m + 7u]) / (float)P->h;
    float v = 0.0f;
    #pragma unroll
    for (uint k = 0u; k < 4u; k++) {
        float dx = (k & 1u) ? 0.75f : 0.25f, dy = k >= 2u ? 0.75f : 0.25f;
        v += bilinear_at(Pix, off, sw, sh, rx + ((float)x + dx) * step_x, ry + ((float)y + dy) * step_y, c) / 4.0f;
    }
    pre_store(P, O, i, v, c);
}
