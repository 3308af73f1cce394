// The adapter's measured peaks (`runtime::gpu::peak`), for the roofline of
// `walkout models profile --device gpu`: FP32 multiply-add throughput from eight independent
// vec4 FMA chains per thread, and memory bandwidth from a vec4 copy.

const ITERS: u32 = 1024u;

@group(0) @binding(0) var<storage, read_write> Out: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> Src: array<vec4<f32>>;

// 2 * 4 * 8 * ITERS FLOPs per thread. The result is stored only when it equals a value it
// never takes, which the compiler cannot know, so no chain is removed.
@compute @workgroup_size(256)
fn fma_peak(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    let s = vec4<f32>(f32(i % 977u) * 1e-4);
    let b = vec4<f32>(0.9999);
    let c = vec4<f32>(1e-4);
    var a0 = s;
    var a1 = s + 1.0;
    var a2 = s + 2.0;
    var a3 = s + 3.0;
    var a4 = s + 4.0;
    var a5 = s + 5.0;
    var a6 = s + 6.0;
    var a7 = s + 7.0;
    for (var k = 0u; k < ITERS; k = k + 1u) {
        a0 = fma(a0, b, c);
        a1 = fma(a1, b, c);
        a2 = fma(a2, b, c);
        a3 = fma(a3, b, c);
        a4 = fma(a4, b, c);
        a5 = fma(a5, b, c);
        a6 = fma(a6, b, c);
        a7 = fma(a7, b, c);
    }
    let r = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    if (r.x == -1234.5) { Out[i % arrayLength(&Out)] = r; }
}

// One vec4 read and one written per thread.
@compute @workgroup_size(256)
fn copy_peak(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i < arrayLength(&Src) && i < arrayLength(&Out)) { Out[i] = Src[i]; }
}
