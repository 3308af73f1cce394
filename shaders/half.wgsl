// Elementwise kernels on float storage of type Fs (`runtime::gpu::half`): f16 in a model run
// at `precision = "f16"`, where every op computes in f32 and only storage is f16. The same
// file compiles with Fs = f32 (the header `kernels::shader_source_as` puts in front). The ops
// are the preamble's (bin_f, un_f, act_fn), as in elementwise.wgsl; the casts convert
// between float storage and the 32-bit words of the other kernels (f32, i32, bool 0/1).

@group(0) @binding(0) var<uniform> P: ElemP;
@group(0) @binding(1) var<storage, read> A: array<Fs>;
@group(0) @binding(2) var<storage, read> B: array<Fs>;
@group(0) @binding(3) var<storage, read_write> O: array<Fs>;
@group(0) @binding(4) var<storage, read> AW: array<u32>;
@group(0) @binding(5) var<storage, read_write> OW: array<u32>;

// arithmetic binary ops (codes as binary_f32's) with a fused activation (flags)
@compute @workgroup_size(256)
fn binary_half(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    let o = elem_offsets(P, i);
    O[i] = to_fs(act_fn(bin_f(f32(A[o.x]), f32(B[o.y]), P.op), P.flags, P.p0, P.p1));
}

@compute @workgroup_size(256)
fn unary_half(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    O[i] = to_fs(un_f(f32(A[i]), P.op, P.p0, P.p1));
}

// words of type flags (0 f32, 1 i32, 2 bool) -> Fs
@compute @workgroup_size(256)
fn cast_to_half(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    let w = AW[i];
    var f: f32;
    switch P.flags {
        case 0u: { f = bitcast<f32>(w); }
        case 1u: { f = f32(bitcast<i32>(w)); }
        default: { f = f32(w); }
    }
    O[i] = to_fs(f);
}

// Fs -> words of type flags (0 f32, 1 i32, 2 bool)
@compute @workgroup_size(256)
fn cast_from_half(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    let f = f32(A[i]);
    switch P.flags {
        case 0u: { OW[i] = bitcast<u32>(f); }
        case 1u: { OW[i] = bitcast<u32>(i32(trunc(f))); }
        default: { OW[i] = select(0u, 1u, f != 0.0); }
    }
}
