// Batched GEMM C = A x B (shaders/matmul.wgsl): 64x64 output tiles per work-group of 16x16
// work-items, 16-deep K steps staged in local memory, each work-item accumulating a 4x4
// register block. `matmul_v4` reads B four columns at a time when B is row-major with
// N % 4 == 0; `matmul` handles any strides (transposes, broadcast batches).

typedef struct {
    uint m, n, k, batch;
    uint a_rs, a_cs, b_rs, b_cs;
    uint a_bs, b_bs, c_bs, pad;
} MmP;

inline void mm_load_a(__constant MmP* P, __global const float* A, __local float* As, uint t, uint m0, uint k0, uint ab) {
    #pragma unroll
    for (uint r = 0u; r < 4u; r++) {
        uint idx = t + r * 256u, kk = idx / 64u, mm = idx % 64u;
        As[idx] = (m0 + mm < P->m && k0 + kk < P->k) ? A[ab + (m0 + mm) * P->a_rs + (k0 + kk) * P->a_cs] : 0.0f;
    }
}

inline void mm_tile(__local const float* As, __local const float4* Bs, uint lx, uint ly, float4* acc) {
    #pragma unroll 4
    for (uint kk = 0u; kk < 16u; kk++) {
        float4 b = Bs[kk * 16u + lx];
        #pragma unroll
        for (uint i = 0u; i < 4u; i++) acc[i] = fma((float4)(As[kk * 64u + ly * 4u + i]), b, acc[i]);
    }
}

inline void mm_store(__constant MmP* P, __global float* C, uint lx, uint ly, uint m0, uint n0, uint cb, const float4* acc) {
    for (uint i = 0u; i < 4u; i++) {
        uint m = m0 + ly * 4u + i;
        if (m >= P->m) continue;
        float v[4] = {acc[i].x, acc[i].y, acc[i].z, acc[i].w};
        for (uint j = 0u; j < 4u; j++) {
            uint n = n0 + lx * 4u + j;
            if (n < P->n) C[cb + m * P->n + n] = v[j];
        }
    }
}

__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void matmul(__constant MmP* P, __global const float* A, __global const float* B, __global float* C) {
    __local float As[1024];
    __local float4 Bs[256];
    uint m0 = get_group_id(1) * 64u, n0 = get_group_id(0) * 64u, bt = get_group_id(2);
    uint lx = get_local_id(0), ly = get_local_id(1), t = ly * 16u + lx;
    float4 acc[4] = {(float4)(0.0f), (float4)(0.0f), (float4)(0.0f), (float4)(0.0f)};
    for (uint k0 = 0u; k0 < P->k; k0 += 16u) {
        mm_load_a(P, A, As, t, m0, k0, bt * P->a_bs);
        uint kk = t / 16u, nb = n0 + (t % 16u) * 4u;
        float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (k0 + kk < P->k) {
            uint base = bt * P->b_bs + (k0 + kk) * P->b_rs;
            for (uint j = 0u; j < 4u; j++) {
                if (nb + j < P->n) v[j] = B[base + (nb + j) * P->b_cs];
            }
        }
        Bs[t] = (float4)(v[0], v[1], v[2], v[3]);
        barrier(CLK_LOCAL_MEM_FENCE);
        mm_tile(As, Bs, lx, ly, acc);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    mm_store(P, C, lx, ly, m0, n0, bt * P->c_bs, acc);
}

__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void matmul_v4(__constant MmP* P, __global const float* A, __global float* C, __global const float4* B4) {
    __local float As[1024];
    __local float4 Bs[256];
    uint m0 = get_group_id(1) * 64u, n0 = get_group_id(0) * 64u, bt = get_group_id(2);
    uint lx = get_local_id(0), ly = get_local_id(1), t = ly * 16u + lx;
    float4 acc[4] = {(float4)(0.0f), (float4)(0.0f), (float4)(0.0f), (float4)(0.0f)};
    for (uint k0 = 0u; k0 < P->k; k0 += 16u) {
        mm_load_a(P, A, As, t, m0, k0, bt * P->a_bs);
        uint kk = t / 16u, nb = n0 + (t % 16u) * 4u;
        Bs[t] = (k0 + kk < P->k && nb < P->n) ? B4[(bt * P->b_bs + (k0 + kk) * P->n + nb) / 4u] : (float4)(0.0f);
        barrier(CLK_LOCAL_MEM_FENCE);
        mm_tile(As, Bs, lx, ly, acc);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    mm_store(P, C, lx, ly, m0, n0, bt * P->c_bs, acc);
}
