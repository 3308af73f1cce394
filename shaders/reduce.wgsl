// Reductions over the middle dim of an [outer, r, inner] view: sum, mean, max, min, prod,
// and softmax (op 1: log-softmax) along it. One thread per (outer, inner) pair.

struct RdP {
    outer: u32, r: u32, inner: u32, op: u32,
};

@group(0) @binding(0) var<uniform> P: RdP;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;

@compute @workgroup_size(256)
fn reduce(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.outer * P.inner) { return; }
    let o = i / P.inner;
    let q = i % P.inner;
    var acc = 0.0;
    switch P.op {
        case 2u: { acc = -3.4028235e38; }
        case 3u: { acc = 3.4028235e38; }
        case 4u: { acc = 1.0; }
        default: {}
    }
    for (var j = 0u; j < P.r; j = j + 1u) {
        let v = X[(o * P.r + j) * P.inner + q];
        switch P.op {
            case 2u: { acc = max(acc, v); }
            case 3u: { acc = min(acc, v); }
            case 4u: { acc = acc * v; }
            default: { acc = acc + v; }
        }
    }
    if (P.op == 1u) { acc = acc / f32(max(P.r, 1u)); }
    O[i] = acc;
}

@compute @workgroup_size(256)
fn softmax(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.outer * P.inner) { return; }
    let o = i / P.inner;
    let q = i % P.inner;
    var m = -3.4028235e38;
    for (var j = 0u; j < P.r; j = j + 1u) {
        m = max(m, X[(o * P.r + j) * P.inner + q]);
    }
    var s = 0.0;
    for (var j = 0u; j < P.r; j = j + 1u) {
        s = s + exp(X[(o * P.r + j) * P.inner + q] - m);
    }
    // op 1: LogSoftmax
    let ls = log(s);
    for (var j = 0u; j < P.r; j = j + 1u) {
        let k = (o * P.r + j) * P.inner + q;
        O[k] = select(exp(X[k] - m) / s, X[k] - m - ls, P.op == 1u);
    }
}
