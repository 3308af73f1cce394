// Padding (constant, edge, reflect), one thread per output element. Per dim: output
// size, input size, leading pad and input stride.

struct PadP {
    n: u32, rank: u32, mode: u32, fill: u32,
    oshape: array<vec4<u32>, 2>,
    ishape: array<vec4<u32>, 2>,
    before: array<vec4<i32>, 2>,
    istride: array<vec4<u32>, 2>,
};

@group(0) @binding(0) var<uniform> P: PadP;
@group(0) @binding(1) var<storage, read> S: array<u32>;
@group(0) @binding(2) var<storage, read_write> D: array<u32>;

@compute @workgroup_size(256)
fn pad(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid(id, nw);
    if (i >= P.n) { return; }
    var rem = i;
    var src = 0u;
    var inside = true;
    for (var d = i32(P.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let os = P.oshape[k / 4u][k % 4u];
        let is = i32(P.ishape[k / 4u][k % 4u]);
        let q = i32(rem % os);
        rem = rem / os;
        var j = q - P.before[k / 4u][k % 4u];
        if (j < 0 || j >= is) {
            if (P.mode == 0u) {
                inside = false;
            } else if (P.mode == 1u) {
                j = clamp(j, 0, is - 1);
            } else {
                if (is == 1) {
                    j = 0;
                } else {
                    let period = 2 * (is - 1);
                    j = ((j % period) + period) % period;
                    if (j >= is) { j = period - j; }
                }
            }
        }
        src = src + u32(max(j, 0)) * P.istride[k / 4u][k % 4u];
    }
    if (inside) { D[i] = S[src]; } else { D[i] = P.fill; }
}
