// Pooling and resizing (shaders/spatial.wgsl), one work-item per output element, tensors
// addressed by (n, c, y, x) strides (NHWC or NCHW).

typedef struct {
    uint n, c, h, w, oh, ow, kh, kw, sy, sx, py, px, kind, include_pad, dy, dx;
    uint isn, isc, isy, isx, osn, osc, osy, osx;
} SpP;

inline uint4 sp_coords(__constant SpP* P, uint i) {
    uint c = i % P->c, t = i / P->c, ox = t % P->ow, t2 = t / P->ow;
    return (uint4)(t2 / P->oh, c, t2 % P->oh, ox);
}

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void pool(__constant SpP* P, __global const float* X, __global float* O) {
    uint i = gid2();
    if (i >= P->n * P->c * P->oh * P->ow) return;
    uint4 q = sp_coords(P, i);
    float acc = P->kind == 0u ? -FLT_MAX : 0.0f;
    uint cnt = 0u;
    for (uint ky = 0u; ky < P->kh; ky++) {
        int iy = (int)(q.z * P->sy + ky * P->dy) - (int)P->py;
        for (uint kx = 0u; kx < P->kw; kx++) {
            int ix = (int)(q.w * P->sx + kx * P->dx) - (int)P->px;
            if (iy < 0 || ix < 0 || iy >= (int)P->h || ix >= (int)P->w) {
                if (P->include_pad == 1u) cnt++;
                continue;
            }
            float v = X[q.x * P->isn + q.y * P->isc + (uint)iy * P->isy + (uint)ix * P->isx];
            cnt++;
            acc = P->kind == 0u ? fmax(acc, v) : acc + v;
        }
    }
    if (P->kind == 1u) acc /= (float)max(cnt, 1u);
    O[q.x * P->osn + q.y * P->osc + q.z * P->osy + q.w * P->osx] = acc;
}

// taps: for y (oh x [lo, hi, frac]) then x (ow x [lo, hi, frac])
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void resize(__constant SpP* P, __global const float* X, __global const float* Taps, __global float* O) {
    uint i = gid2();
    if (i >= P->n * P->c * P->oh * P->ow) return;
    uint4 q = sp_coords(P, i);
    uint y0 = (uint)Taps[q.z * 3u], y1 = (uint)Taps[q.z * 3u + 1u];
    float fy = Taps[q.z * 3u + 2u];
    uint xb = P->oh * 3u + q.w * 3u;
    uint x0 = (uint)Taps[xb], x1 = (uint)Taps[xb + 1u];
    float fx = Taps[xb + 2u];
    uint base = q.x * P->isn + q.y * P->isc;
    float tl = X[base + y0 * P->isy + x0 * P->isx], tr = X[base + y0 * P->isy + x1 * P->isx];
    float bl = X[base + y1 * P->isy + x0 * P->isx], br = X[base + y1 * P->isy + x1 * P->isx];
    float top = tl + (tr - tl) * fx, bot = bl + (br - bl) * fx;
    O[q.x * P->osn + q.y * P->osc + q.z * P->osy + q.w * P->osx] = top + (bot - top) * fy;
}
