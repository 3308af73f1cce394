// Index-driven kernels (shaders/index.wgsl) for post-processing: top-k along the last
// axis, GatherND, argmax over the middle dim of [outer, r, inner], select (where) with
// broadcasting, AddN of up to four same-shaped inputs, and gather along an axis.

typedef struct {
    uint a, b, c, d, e, f, g, h;
    uint st[8];
} IxP;

// a = rows, b = n, c = k, d = largest, e = is_int; values -> O, indices -> O2. Better value
// first (larger when d == 1), ties by lower index; pass p picks the best element strictly
// after pass p - 1's pick in that order. One work-group per row: each pass, every work-item
// finds its best among the elements it strides over, and the group reduces the 64 in local
// memory.
inline bool topk_after(float v, uint j, float pv, uint pj, bool largest, bool first) {
    if (first) return true;
    if (v == pv) return j > pj;
    return largest ? v < pv : v > pv;
}

#define NONE 0xffffffffu

// whether candidate (v, j) beats (w, k): the larger value (the smaller unless `largest`),
// on a tie the lower index (the higher with `last`); index NONE is no candidate
inline bool better(float v, uint j, float w, uint k, bool largest, bool last) {
    if (j == NONE) return false;
    if (k == NONE) return true;
    if (v == w) return (j < k) != last;
    return largest ? v > w : v < w;
}

// Each work-item's candidate in, the group's best out in rv[0], rj[0] (called by all 64).
inline void reduce_best(__local float* rv, __local uint* rj, uint t, float v, uint j, bool largest, bool last) {
    rv[t] = v;
    rj[t] = j;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (t < s && better(rv[t + s], rj[t + s], rv[t], rj[t], largest, last)) {
            rv[t] = rv[t + s];
            rj[t] = rj[t + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

inline float word_value(uint w, bool is_int) {
    return is_int ? (float)as_int(w) : as_float(w);
}

inline uint group_item(void) {
    return (uint)get_group_id(0) + (uint)get_group_id(1) * (uint)get_num_groups(0);
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void topk(__constant IxP* P, __global const uint* X, __global uint* O, __global uint* O2) {
    __local float red_v[64];
    __local uint red_j[64];
    uint row = group_item(), t = (uint)get_local_id(0);
    if (row >= P->a) return;
    bool largest = P->d == 1u, is_int = P->e == 1u;
    float pv = 0.0f;
    uint pj = 0u;
    for (uint p = 0u; p < P->c; p++) {
        uint bj = NONE;
        float bv = 0.0f;
        for (uint j = t; j < P->b; j += 64u) {
            float v = word_value(X[row * P->b + j], is_int);
            if (topk_after(v, j, pv, pj, largest, p == 0u) && better(v, j, bv, bj, largest, false)) {
                bv = v;
                bj = j;
            }
        }
        reduce_best(red_v, red_j, t, bv, bj, largest, false);
        uint best = red_j[0];
        pv = red_v[0];
        barrier(CLK_LOCAL_MEM_FENCE); // everyone has read the pick before the next pass writes
        if (best == NONE) best = 0u;
        pj = best;
        if (t == 0u) {
            O[row * P->c + p] = X[row * P->b + best];
            O2[row * P->c + p] = best;
        }
    }
}

// a = rows (output slices), b = k (index depth), c = slice size, d = param numel; st =
// param strides of the indexed dims
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void gather_nd(__constant IxP* P, __global const uint* X, __global const int* Y, __global uint* O) {
    uint i = gid2();
    if (i >= P->a * P->c) return;
    uint r = i / P->c, w = i % P->c, off = 0u;
    for (uint j = 0u; j < P->b; j++) off += (uint)Y[r * P->b + j] * P->st[j];
    uint at = off + w;
    O[i] = at < P->d ? X[at] : 0u;
}

// a = outer, b = r, c = inner, e = is_int, f = select_last. One work-group per output: its
// 64 work-items stride over the reduced dim, then reduce in local memory.
__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void argmax(__constant IxP* P, __global const uint* X, __global uint* O) {
    __local float red_v[64];
    __local uint red_j[64];
    uint i = group_item(), t = (uint)get_local_id(0);
    if (i >= P->a * P->c) return;
    uint o = i / P->c, q = i % P->c, best = NONE;
    bool is_int = P->e == 1u, last = P->f == 1u;
    float bv = 0.0f;
    for (uint j = t; j < P->b; j += 64u) {
        float v = word_value(X[(o * P->b + j) * P->c + q], is_int);
        if (better(v, j, bv, best, true, last)) {
            bv = v;
            best = j;
        }
    }
    reduce_best(red_v, red_j, t, bv, best, true, last);
    if (t == 0u) O[i] = red_j[0] == NONE ? 0u : red_j[0];
}

// a = n, b = rank; st holds the output shape; the strides of cond (X), then-value (Y) and
// else-value (Z) come packed in W: [rank x 3]
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void select_where(__constant IxP* P, __global const uint* X, __global const uint* Y, __global uint* O, __global const uint* Z,
                  __global const uint* W) {
    uint i = gid2();
    if (i >= P->a) return;
    uint rem = i, oc = 0u, oy = 0u, oz = 0u;
    for (int d = (int)P->b - 1; d >= 0; d--) {
        uint s = P->st[d], q = rem % s;
        rem /= s;
        oc += q * W[d * 3];
        oy += q * W[d * 3 + 1];
        oz += q * W[d * 3 + 2];
    }
    O[i] = X[oc] != 0u ? Y[oy] : Z[oz];
}

// a = n, b = number of inputs (2..4), c = is_int
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void addn(__constant IxP* P, __global const uint* X, __global const uint* Y, __global uint* O, __global const uint* Z,
          __global const uint* W) {
    uint i = gid2();
    if (i >= P->a) return;
    if (P->c == 1u) {
        int s = as_int(X[i]) + as_int(Y[i]);
        if (P->b > 2u) s += as_int(Z[i]);
        if (P->b > 3u) s += as_int(W[i]);
        O[i] = as_uint(s);
    } else {
        float s = as_float(X[i]) + as_float(Y[i]);
        if (P->b > 2u) s += as_float(Z[i]);
        if (P->b > 3u) s += as_float(W[i]);
        O[i] = as_uint(s);
    }
}

// Gather along an axis with constant indices: a = outer, b = index count, c = inner, d =
// axis size; Y holds the (non-negative) indices
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void gather_axis(__constant IxP* P, __global const uint* X, __global const uint* Y, __global uint* O) {
    uint i = gid2();
    if (i >= P->a * P->b * P->c) return;
    uint w = i % P->c, r = (i / P->c) % P->b, o = i / (P->c * P->b);
    O[i] = X[(o * P->d + Y[r]) * P->c + w];
}
