// Shared preamble of every kernel file (`runtime::opencl` builds them as one program, this
// file first). The kernels mirror shaders/*.wgsl one for one: same parameter blocks (passed
// as a __constant struct, binding 0 of the WGSL twin), same operands in binding order, same
// work-group shapes, so that one launch description (`runtime::gpu::kernels::Launch`) drives
// both. FPGA compilers (Intel aoc, Xilinx v++) take them as they are: no recursion, no
// dynamic allocation, local memory sized at compile time, fixed work-group sizes, no
// subgroup or image extensions.

// The 1-D index of a work-item in a launch folded into 2-D past the dispatch limit (the
// host's `groups_1d`): work-groups of 256 along x.
inline uint gid2(void) {
    return (uint)get_global_id(0) + (uint)get_global_id(1) * (uint)get_global_size(0);
}

// Activations by code (graph::Activation, codes in gpu/kernels/elementwise.rs act_code).
inline float act_fn(float x, uint code, float p0, float p1) {
    switch (code) {
        case 1u: return fmax(x, 0.0f);
        case 2u: return clamp(x, 0.0f, 6.0f);
        case 3u: return fmin(fmax(x, p0), p1);
        case 4u: return 1.0f / (1.0f + exp(-x));
        case 5u: return x < 0.0f ? x * p0 : x;
        case 6u: return clamp(p0 * x + p1, 0.0f, 1.0f);
        case 7u: return x * clamp(x / 6.0f + 0.5f, 0.0f, 1.0f);
        case 8u: return x > 0.0f ? x : p0 * (exp(fmin(x, 0.0f)) - 1.0f);
        case 9u: return p1 * (x > 0.0f ? x : p0 * (exp(fmin(x, 0.0f)) - 1.0f));
        case 10u: return fmax(x, 0.0f) + log(1.0f + exp(-fabs(x)));
        case 11u: return x / (1.0f + fabs(x));
        case 12u: return x > p0 ? x - p1 : (x < -p0 ? x + p1 : 0.0f);
        case 13u: return sign(x);
        default: return x;
    }
}
