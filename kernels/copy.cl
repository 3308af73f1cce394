// Data movement (shaders/copy.wgsl): for every multi-index of an iteration shape (rank <=
// 8), one 32-bit word from src_off + sum(i_d * ss_d) (with an optional modulo per dim, for
// tiling) to dst_off + sum(i_d * ds_d). Strided and reversed slices, transposes,
// concatenation, stacking, splitting, tiling and broadcasting are all this kernel.

typedef struct {
    uint n, rank, src_off, dst_off;
    uint shape[8];
    int ss[8];
    uint ds[8], md[8];
} CpP;

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void copy_strided(__constant CpP* P, __global const uint* S, __global uint* D) {
    uint i = gid2();
    if (i >= P->n) return;
    uint rem = i, dof = P->dst_off;
    int so = (int)P->src_off;
    for (int d = (int)P->rank - 1; d >= 0; d--) {
        uint s = P->shape[d], q = rem % s;
        rem /= s;
        uint m = P->md[d];
        so += (int)(m != 0u ? q % m : q) * P->ss[d];
        dof += q * P->ds[d];
    }
    D[dof] = S[(uint)so];
}
