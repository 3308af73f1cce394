// Batched GEMM C = A x B: 64x64 output tiles per workgroup of 16x16 threads, 16-deep K
// steps staged in workgroup memory, each thread accumulating a 4x4 register block as four
// vec4 rows. `matmul_v4` reads B four columns at a time (vec4 loads) when B is row-major
// with N % 4 == 0; `matmul` handles any strides (transposes, broadcast batches).

@group(0) @binding(0) var<uniform> P: MmP;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@group(0) @binding(4) var<storage, read> B4: array<vec4<f32>>;

var<workgroup> As: array<f32, 1024>;          // [16][64] k-major
var<workgroup> Bs: array<vec4<f32>, 256>;     // [16][16] vec4 = [16][64]

fn tile_mul(lid: vec3<u32>, acc: ptr<function, array<vec4<f32>, 4>>) {
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
        let b = Bs[kk * 16u + lid.x];
        for (var i = 0u; i < 4u; i = i + 1u) {
            (*acc)[i] = (*acc)[i] + As[kk * 64u + lid.y * 4u + i] * b;
        }
    }
}

fn load_a(t: u32, m0: u32, k0: u32, ab: u32) {
    for (var r = 0u; r < 4u; r = r + 1u) {
        let idx = t + r * 256u;
        let kk = idx / 64u;
        let mm = idx % 64u;
        var v = 0.0;
        if (m0 + mm < P.m && k0 + kk < P.k) {
            v = A[ab + (m0 + mm) * P.a_rs + (k0 + kk) * P.a_cs];
        }
        As[idx] = v;
    }
}

fn store(lid: vec3<u32>, m0: u32, n0: u32, cb: u32, acc: array<vec4<f32>, 4>) {
    for (var i = 0u; i < 4u; i = i + 1u) {
        let m = m0 + lid.y * 4u + i;
        if (m >= P.m) { continue; }
        for (var j = 0u; j < 4u; j = j + 1u) {
            let n = n0 + lid.x * 4u + j;
            if (n < P.n) { C[cb + m * P.n + n] = acc[i][j]; }
        }
    }
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m0 = wg.y * 64u;
    let n0 = wg.x * 64u;
    let bt = wg.z;
    let t = lid.y * 16u + lid.x;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < P.k; k0 = k0 + 16u) {
        load_a(t, m0, k0, bt * P.a_bs);
        // B tile: thread t loads one vec4 of row kk = t / 16, columns (t % 16) * 4 ..
        let kk = t / 16u;
        let nb = n0 + (t % 16u) * 4u;
        var v = vec4<f32>(0.0);
        if (k0 + kk < P.k) {
            let base = bt * P.b_bs + (k0 + kk) * P.b_rs;
            for (var j = 0u; j < 4u; j = j + 1u) {
                if (nb + j < P.n) { v[j] = B[base + (nb + j) * P.b_cs]; }
            }
        }
        Bs[t] = v;
        workgroupBarrier();
        tile_mul(lid, &acc);
        workgroupBarrier();
    }
    store(lid, m0, n0, bt * P.c_bs, acc);
}

@compute @workgroup_size(16, 16)
fn matmul_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m0 = wg.y * 64u;
    let n0 = wg.x * 64u;
    let bt = wg.z;
    let t = lid.y * 16u + lid.x;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < P.k; k0 = k0 + 16u) {
        load_a(t, m0, k0, bt * P.a_bs);
        let kk = t / 16u;
        let nb = n0 + (t % 16u) * 4u;
        var v = vec4<f32>(0.0);
        if (k0 + kk < P.k && nb < P.n) {
            v = B4[(bt * P.b_bs + (k0 + kk) * P.n + nb) / 4u];
        }
        Bs[t] = v;
        workgroupBarrier();
        tile_mul(lid, &acc);
        workgroupBarrier();
    }
    store(lid, m0, n0, bt * P.c_bs, acc);
}
