// Broadcasting elementwise kernels on 32-bit words: binary ops (f32 and i32, comparisons
// give u32 0/1), unary f32 ops with activations, and casts. Shapes and broadcast strides
// (rank <= 8) come in a uniform (ElemP, in the preamble); 0 strides broadcast. The ops
// themselves (bin_f, cmp_f, un_f) live in the preamble, shared with half.wgsl.

@group(0) @binding(0) var<uniform> P: ElemP;
@group(0) @binding(1) var<storage, read> A: array<u32>;
@group(0) @binding(2) var<storage, read> B: array<u32>;
@group(0) @binding(3) var<storage, read_write> O: array<u32>;

@compute @workgroup_size(256)
fn binary_f32(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    let o = elem_offsets(P, i);
    let a = bitcast<f32>(A[o.x]);
    let b = bitcast<f32>(B[o.y]);
    if (P.op >= 10u && P.op <= 16u) {
        O[i] = cmp_f(a, b, P.op);
    } else {
        // a fused activation (flags = activation code) finishes the chain in one pass
        O[i] = bitcast<u32>(act_fn(bin_f(a, b, P.op), P.flags, P.p0, P.p1));
    }
}

@compute @workgroup_size(256)
fn binary_i32(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    let o = elem_offsets(P, i);
    let a = bitcast<i32>(A[o.x]);
    let b = bitcast<i32>(B[o.y]);
    var r: i32;
    var cmp = 2u;
    switch P.op {
        case 0u: { r = a + b; }
        case 1u: { r = a - b; }
        case 2u: { r = a * b; }
        case 3u: { r = select(0, a / b, b != 0); }
        case 4u: {
            if (b == 0) { r = 0; } else {
                var q = a / b;
                if ((a % b != 0) && ((a < 0) != (b < 0))) { q = q - 1; }
                r = q;
            }
        }
        case 5u: { r = max(a, b); }
        case 6u: { r = min(a, b); }
        case 8u: { r = (a - b) * (a - b); }
        case 9u: { r = select(a, a * b, a < 0); }
        case 10u: { cmp = select(0u, 1u, a == b); }
        case 11u: { cmp = select(0u, 1u, a < b); }
        case 12u: { cmp = select(0u, 1u, a <= b); }
        case 13u: { cmp = select(0u, 1u, a > b); }
        case 14u: { cmp = select(0u, 1u, a >= b); }
        case 15u: { cmp = select(0u, 1u, a != 0 && b != 0); }
        case 16u: { cmp = select(0u, 1u, a != 0 || b != 0); }
        case 17u: {
            if (b == 0) { r = 0; } else {
                var m = a % b;
                if ((m != 0) && ((m < 0) != (b < 0))) { m = m + b; }
                r = m;
            }
        }
        default: { r = a; }
    }
    if (cmp != 2u) {
        O[i] = cmp;
    } else {
        O[i] = bitcast<u32>(r);
    }
}

// logical not on bool words
@compute @workgroup_size(256)
fn not_bool(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    O[i] = select(0u, 1u, A[i] == 0u);
}

// x * scale[c] + shift[c] along axis 1: rank = channels, flags = inner size; B holds the
// scales then the shifts
@compute @workgroup_size(256)
fn channel_affine(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    let c = (i / P.flags) % P.rank;
    O[i] = bitcast<u32>(bitcast<f32>(A[i]) * bitcast<f32>(B[c]) + bitcast<f32>(B[P.rank + c]));
}

// unary op codes: 0..15 as UnOp order (see gpu.rs), 100+ = activation code
@compute @workgroup_size(256)
fn unary_f32(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    O[i] = bitcast<u32>(un_f(bitcast<f32>(A[i]), P.op, P.p0, P.p1));
}

// casts: flags = from * 4 + to, with 0 f32, 1 i32, 2 bool
@compute @workgroup_size(256)
fn cast_words(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    let src_t = P.flags / 4u;
    let dst_t = P.flags % 4u;
    let w = A[i];
    var f: f32;
    switch src_t {
        case 0u: { f = bitcast<f32>(w); }
        case 1u: { f = f32(bitcast<i32>(w)); }
        default: { f = f32(w); }
    }
    switch dst_t {
        case 0u: { O[i] = bitcast<u32>(f); }
        case 1u: {
            if (src_t == 1u) { O[i] = w; } else { O[i] = bitcast<u32>(i32(trunc(f))); }
        }
        default: { O[i] = select(0u, 1u, f != 0.0); }
    }
}
