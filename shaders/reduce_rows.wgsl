// Reductions and softmax along a contiguous axis (an [outer, r] view, reduce.wgsl's inner == 1)
// with subgroup operations (`runtime::gpu::subgroups`), compiled only where the adapter offers
// SUBGROUP (naga 30 takes the subgroup builtins without `enable subgroups;`, which it refuses): one workgroup of 256 per row strides over it, each subgroup combines its lanes
// (subgroupAdd/Max/Min/Mul), and the subgroups' partials meet in workgroup memory. The same op
// codes as reduce.wgsl: 0 sum, 1 mean, 2 max, 3 min, 4 prod; softmax op 1 is LogSoftmax.

struct RdP {
    outer: u32, r: u32, inner: u32, op: u32,
};

@group(0) @binding(0) var<uniform> P: RdP;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;

var<workgroup> part: array<f32, 256>;
var<workgroup> total: f32;

fn ident(op: u32) -> f32 {
    switch op {
        case 2u: { return -3.4028235e38; }
        case 3u: { return 3.4028235e38; }
        case 4u: { return 1.0; }
        default: { return 0.0; }
    }
}

fn comb(op: u32, a: f32, b: f32) -> f32 {
    switch op {
        case 2u: { return max(a, b); }
        case 3u: { return min(a, b); }
        case 4u: { return a * b; }
        default: { return a + b; }
    }
}

fn sg_comb(op: u32, v: f32) -> f32 {
    switch op {
        case 2u: { return subgroupMax(v); }
        case 3u: { return subgroupMin(v); }
        case 4u: { return subgroupMul(v); }
        default: { return subgroupAdd(v); }
    }
}

// Every invocation's `v` combined by `op` across the workgroup, returned to all of them.
fn wg_reduce(op: u32, v: f32, li: u32, sg: u32, nsg: u32, lane: u32) -> f32 {
    let s = sg_comb(op, v);
    if (lane == 0u) { part[sg] = s; }
    workgroupBarrier();
    if (li == 0u) {
        var a = part[0];
        for (var k = 1u; k < nsg; k = k + 1u) { a = comb(op, a, part[k]); }
        total = a;
    }
    return workgroupUniformLoad(&total);
}

@compute @workgroup_size(256)
fn reduce_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
               @builtin(local_invocation_index) li: u32, @builtin(subgroup_id) sg: u32,
               @builtin(num_subgroups) nsg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let row = wg.y * nw.x + wg.x;
    if (row >= P.outer) { return; }
    var acc = ident(P.op);
    for (var j = li; j < P.r; j = j + 256u) {
        acc = comb(P.op, acc, X[row * P.r + j]);
    }
    var t = wg_reduce(P.op, acc, li, sg, nsg, lane);
    if (P.op == 1u) { t = t / f32(max(P.r, 1u)); }
    if (li == 0u) { O[row] = t; }
}

@compute @workgroup_size(256)
fn softmax_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
                @builtin(local_invocation_index) li: u32, @builtin(subgroup_id) sg: u32,
                @builtin(num_subgroups) nsg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let row = wg.y * nw.x + wg.x;
    if (row >= P.outer) { return; }
    let base = row * P.r;
    var m = -3.4028235e38;
    for (var j = li; j < P.r; j = j + 256u) { m = max(m, X[base + j]); }
    m = wg_reduce(2u, m, li, sg, nsg, lane);
    var s = 0.0;
    for (var j = li; j < P.r; j = j + 256u) { s = s + exp(X[base + j] - m); }
    // the partials of the max are read before the sum's overwrite them
    workgroupBarrier();
    s = wg_reduce(0u, s, li, sg, nsg, lane);
    let ls = log(s);
    for (var j = li; j < P.r; j = j + 256u) {
        let k = base + j;
        O[k] = select(exp(X[k] - m) / s, X[k] - m - ls, P.op == 1u);
    }
}
