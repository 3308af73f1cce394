// Shared preamble, prepended to every kernel file when it is compiled
// (`runtime::gpu::kernels::shader_source`).

// The 1-D index of a thread in a launch of workgroups of 256 threads folded into 2-D past
// the dispatch limit (`groups_1d` on the host).
fn gid(id: vec3<u32>, nw: vec3<u32>) -> u32 {
    return id.x + id.y * nw.x * 256u;
}
