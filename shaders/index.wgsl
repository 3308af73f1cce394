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
// best element that comes strictly after pass p - 1's pick in that order.
fn after(v: f32, j: u32, pv: f32, pj: u32, largest: bool, first: bool) -> bool {
    if (first) { return true; }
    if (v == pv) { return j > pj; }
    if (largest) { return v < pv; }
    return v > pv;
}

@compute @workgroup_size(64)
fn topk(@builtin(global_invocation_id) id: vec3<u32>) {
    let row = id.x;
    if (row >= P.a) { return; }
    let largest = P.d == 1u;
    var pv = 0.0;
    var pj = 0u;
    for (var p = 0u; p < P.c; p = p + 1u) {
        var best = 0u;
        var bv = 0.0;
        var found = false;
        for (var j = 0u; j < P.b; j = j + 1u) {
            let w = X[row * P.b + j];
            var v = bitcast<f32>(w);
            if (P.e == 1u) { v = f32(bitcast<i32>(w)); }
            if (after(v, j, pv, pj, largest, p == 0u)) {
                var better = !found;
                if (found && largest) { better = v > bv; }
                if (found && !largest) { better = v < bv; }
                if (better) {
                    best = j;
                    bv = v;
                    found = true;
                }
            }
        }
        pv = bv;
        pj = best;
        O[row * P.c + p] = X[row * P.b + best];
        O2[row * P.c + p] = best;
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

// a = outer, b = r, c = inner, e = is_int, f = select_last
@compute @workgroup_size(256)
fn argmax(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.a * P.c) { return; }
    let o = i / P.c;
    let q = i % P.c;
    var best = 0u;
    var bv = -3.4028235e38;
    for (var j = 0u; j < P.b; j = j + 1u) {
        let w = X[(o * P.b + j) * P.c + q];
        var v = bitcast<f32>(w);
        if (P.e == 1u) { v = f32(bitcast<i32>(w)); }
        if (j == 0u || v > bv || (P.f == 1u && v == bv)) { bv = v; best = j; }
    }
    O[i] = best;
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
