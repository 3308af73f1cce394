// Index-driven kernels for post-processing: top-k along the last axis, GatherND, argmax over
// the middle dim of [outer, r, inner], select (where) with broadcasting, and AddN of up to
// four same-shaped inputs.

struct IxP {
    a: u32, b: u32, c: u32, d: u32,
    e: u32, f: u32, g: u32, h: u32,
    st: array<vec4<u32>, 2>,
};

@group(0) @binding(0) var<uniform> P: IxP;
@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read> Y: array<u32>;
@group(0) @binding(3) var<storage, read_write> O: array<u32>;
@group(0) @binding(4) var<storage, read_write> O2: array<u32>;
@group(0) @binding(5) var<storage, read> Z: array<u32>;
@group(0) @binding(6) var<storage, read> W: array<u32>;

// a = rows, b = n, c = k, d = largest, e = is_int; values -> O, indices (i32) -> O2
// Order: better value first (larger when d == 1), ties by lower index. Pass p picks the
// best element that comes strictly after pass p - 1's pick in that order. One workgroup
// per row: each pass, every invocation finds its best among the elements it strides over,
// and the workgroup reduces the 64 in shared memory.
fn after(v: f32, j: u32, pv: f32, pj: u32, largest: bool, first: bool) -> bool {
    if (first) { return true; }
    if (v == pv) { return j > pj; }
    if (largest) { return v < pv; }
    return v > pv;
}

const NONE: u32 = 0xffffffffu;

// whether candidate (v, j) beats (w, k): the larger value (the smaller unless `largest`),
// on a tie the lower index (the higher with `last`); index NONE is no candidate
fn better(v: f32, j: u32, w: f32, k: u32, largest: bool, last: bool) -> bool {
    if (j == NONE) { return false; }
    if (k == NONE) { return true; }
    if (v == w) { return (j < k) != last; }
    if (largest) { return v > w; }
    return v < w;
}

fn word_value(w: u32, is_int: bool) -> f32 {
    if (is_int) { return f32(bitcast<i32>(w)); }
    return bitcast<f32>(w);
}

var<workgroup> red_v: array<f32, 64>;
var<workgroup> red_j: array<u32, 64>;

// Each invocation's candidate in, the workgroup's best out in red_v[0], red_j[0] (called
// in uniform control flow by all 64).
fn reduce_best(t: u32, v: f32, j: u32, largest: bool, last: bool) {
    red_v[t] = v;
    red_j[t] = j;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s >> 1u) {
        if (t < s && better(red_v[t + s], red_j[t + s], red_v[t], red_j[t], largest, last)) {
            red_v[t] = red_v[t + s];
            red_j[t] = red_j[t + s];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(64)
fn topk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = wid.x + wid.y * nw.x;
    if (row >= P.a) { return; }
    let largest = P.d == 1u;
    let is_int = P.e == 1u;
    var pv = 0.0;
    var pj = 0u;
    for (var p = 0u; p < P.c; p = p + 1u) {
        var bj = NONE;
        var bv = 0.0;
        for (var j = t; j < P.b; j = j + 64u) {
            let v = word_value(X[row * P.b + j], is_int);
            if (after(v, j, pv, pj, largest, p == 0u) && better(v, j, bv, bj, largest, false)) {
                bv = v;
                bj = j;
            }
        }
        reduce_best(t, bv, bj, largest, false);
        var best = red_j[0];
        pv = red_v[0];
        workgroupBarrier(); // everyone has read the pick before the next pass writes
        if (best == NONE) { best = 0u; }
        pj = best;
        if (t == 0u) {
            O[row * P.c + p] = X[row * P.b + best];
            O2[row * P.c + p] = best;
        }
    }
}

// a = rows (output slices), b = k (index depth), c = slice size, d = param numel;
// st = param strides of the indexed dims
@compute @workgroup_size(256)
fn gather_nd(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.a * P.c) { return; }
    let r = i / P.c;
    let w = i % P.c;
    var off = 0u;
    for (var j = 0u; j < P.b; j = j + 1u) {
        off = off + u32(bitcast<i32>(Y[r * P.b + j])) * P.st[j / 4u][j % 4u];
    }
    let at = off + w;
    if (at < P.d) { O[i] = X[at]; } else { O[i] = 0u; }
}

// a = outer, b = r, c = inner, e = is_int, f = select_last. One workgroup per output: its
// 64 invocations stride over the reduced dim, then reduce in shared memory.
@compute @workgroup_size(64)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = wid.x + wid.y * nw.x;
    if (i >= P.a * P.c) { return; }
    let o = i / P.c;
    let q = i % P.c;
    let is_int = P.e == 1u;
    let last = P.f == 1u;
    var best = NONE;
    var bv = 0.0;
    for (var j = t; j < P.b; j = j + 64u) {
        let v = word_value(X[(o * P.b + j) * P.c + q], is_int);
        if (better(v, j, bv, best, true, last)) {
            bv = v;
            best = j;
        }
    }
    reduce_best(t, bv, best, true, last);
    if (t == 0u) { O[i] = select(red_j[0], 0u, red_j[0] == NONE); }
}

// a = n, b = rank; st holds the output shape; strides of cond (X), then-value (Y) and
// else-value (Z) come packed in W: [rank x 3]
@compute @workgroup_size(256)
fn select_where(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.a) { return; }
    var rem = i;
    var oc = 0u;
    var oy = 0u;
    var oz = 0u;
    for (var d = i32(P.b) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let s = P.st[k / 4u][k % 4u];
        let q = rem % s;
        rem = rem / s;
        oc = oc + q * W[k * 3u];
        oy = oy + q * W[k * 3u + 1u];
        oz = oz + q * W[k * 3u + 2u];
    }
    if (X[oc] != 0u) { O[i] = Y[oy]; } else { O[i] = Z[oz]; }
}

// a = n, b = number of inputs (2..4), c = is_int
@compute @workgroup_size(256)
fn addn(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.a) { return; }
    if (P.c == 1u) {
        var s = bitcast<i32>(X[i]) + bitcast<i32>(Y[i]);
        if (P.b > 2u) { s = s + bitcast<i32>(Z[i]); }
        if (P.b > 3u) { s = s + bitcast<i32>(W[i]); }
        O[i] = bitcast<u32>(s);
    } else {
        var s = bitcast<f32>(X[i]) + bitcast<f32>(Y[i]);
        if (P.b > 2u) { s = s + bitcast<f32>(Z[i]); }
        if (P.b > 3u) { s = s + bitcast<f32>(W[i]); }
        O[i] = bitcast<u32>(s);
    }
}

// Gather along an axis with constant indices: a = outer, b = index count, c = inner,
// d = axis size; Y holds the (non-negative) indices
@compute @workgroup_size(256)
fn gather_axis(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.a * P.b * P.c) { return; }
    let w = i % P.c;
    let r = (i / P.c) % P.b;
    let o = i / (P.c * P.b);
    O[i] = X[(o * P.d + Y[r]) * P.c + w];
}
