// Padding (shaders/pad.wgsl): constant, edge and reflect, one work-item per output element.
// Per dim: output size, input size, leading pad and input stride.

typedef struct {
    uint n, rank, mode, fill;
    uint oshape[8], ishape[8];
    int before[8];
    uint istride[8];
} PadP;

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void pad(__constant PadP* P, __global const uint* S, __global uint* D) {
    uint i = gid2();
    if (i >= P->n) return;
    uint rem = i, src = 0u;
    bool inside = true;
    for (int d = (int)P->rank - 1; d >= 0; d--) {
        uint os = P->oshape[d];
        int is = (int)P->ishape[d];
        int q = (int)(rem % os);
        rem /= os;
        int j = q - P->before[d];
        if (j < 0 || j >= is) {
            if (P->mode == 0u) {
                inside = false;
            } else if (P->mode == 1u) {
                j = clamp(j, 0, is - 1);
            } else if (is == 1) {
                j = 0;
            } else {
                int period = 2 * (is - 1);
                j = ((j % period) + period) % period;
                if (j >= is) j = period - j;
            }
        }
        src += (uint)max(j, 0) * P->istride[d];
    }
    D[i] = inside ? S[src] : P->fill;
}
