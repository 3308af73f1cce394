// Data movement: for every multi-index of an iteration shape (rank <= 8), copy one element
// of type Ws (a 32-bit word, or an f16 at precision f16) from src_off + sum(i_d * ss_d) (with
// an optional modulo per dim, for tiling) to
// dst_off + sum(i_d * ds_d). Strided and reversed slices, transposes, concatenation,
// stacking, splitting, tiling and broadcasting are all this kernel with different strides.

struct CpP {
    n: u32, rank: u32, src_off: u32, dst_off: u32,
    shape: array<vec4<u32>, 2>,
    ss: array<vec4<i32>, 2>,
    ds: array<vec4<u32>, 2>,
    md: array<vec4<u32>, 2>,
};

@group(0) @binding(0) var<uniform> P: CpP;
@group(0) @binding(1) var<storage, read> S: array<Ws>;
@group(0) @binding(2) var<storage, read_write> D: array<Ws>;

@compute @workgroup_size(256)
fn copy_strided(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    var rem = i;
    var so = i32(P.src_off);
    var dof = P.dst_off;
    for (var d = i32(P.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let s = P.shape[k / 4u][k % 4u];
        let q = rem % s;
        rem = rem / s;
        let m = P.md[k / 4u][k % 4u];
        var qs = q;
        if (m != 0u) { qs = q % m; }
        so = so + i32(qs) * P.ss[k / 4u][k % 4u];
        dof = dof + q * P.ds[k / 4u][k % 4u];
    }
    D[dof] = S[u32(so)];
}
