// Shared preamble, prepended to every kernel file when it is compiled
// (`runtime::gpu::kernels::shader_source`).

// The 1-D index of a thread in a launch of workgroups of 256 threads folded into 2-D past
// the dispatch limit (`groups_1d` on the host).
fn gid(id: vec3<u32>, nw: vec3<u32>) -> u32 {
    return id.x + id.y * nw.x * 256u;
}

// Activations by code (graph::Activation; codes in kernels/elementwise.rs act_code), shared by
// the conv epilogue and the elementwise kernels.
fn act_fn(x: f32, code: u32, p0: f32, p1: f32) -> f32 {
    switch code {
        case 1u: { return max(x, 0.0); }
        case 2u: { return clamp(x, 0.0, 6.0); }
        case 3u: { return min(max(x, p0), p1); }
        case 4u: { return 1.0 / (1.0 + exp(-x)); }
        case 5u: { return select(x, x * p0, x < 0.0); }
        case 6u: { return clamp(p0 * x + p1, 0.0, 1.0); }
        case 7u: { return x * clamp(x / 6.0 + 0.5, 0.0, 1.0); }
        case 8u: { return select(p0 * (exp(min(x, 0.0)) - 1.0), x, x > 0.0); }
        case 9u: { return p1 * select(p0 * (exp(min(x, 0.0)) - 1.0), x, x > 0.0); }
        case 10u: { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
        case 11u: { return x / (1.0 + abs(x)); }
        case 12u: { return select(select(0.0, x + p1, x < -p0), x - p1, x > p0); }
        case 13u: { return sign(x); }
        default: { return x; }
    }
}
