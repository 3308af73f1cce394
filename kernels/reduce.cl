// Reductions (shaders/reduce.wgsl) over the middle dim of an [outer, r, inner] view: sum,
// mean, max, min, prod; and softmax (op 1: log-softmax) along it. One work-item per
// (outer, inner) pair.

typedef struct {
    uint outer, r, inner, op;
} RdP;

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void reduce(__constant RdP* P, __global const float* X, __global float* O) {
    uint i = gid2();
    if (i >= P->outer * P->inner) return;
    uint o = i / P->inner, q = i % P->inner;
    float acc = P->op == 2u ? -FLT_MAX : (P->op == 3u ? FLT_MAX : (P->op == 4u ? 1.0f : 0.0f));
    for (uint j = 0u; j < P->r; j++) {
        float v = X[(o * P->r + j) * P->inner + q];
        switch (P->op) {
            case 2u: acc = fmax(acc, v); break;
            case 3u: acc = fmin(acc, v); break;
            case 4u: acc *= v; break;
            default: acc += v; break;
        }
    }
    if (P->op == 1u) acc /= (float)max(P->r, 1u);
    O[i] = acc;
}

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void softmax(__constant RdP* P, __global const float* X, __global float* O) {
    uint i = gid2();
    if (i >= P->outer * P->inner) return;
    uint o = i / P->inner, q = i % P->inner;
    float m = -FLT_MAX, s = 0.0f;
    for (uint j = 0u; j < P->r; j++) m = fmax(m, X[(o * P->r + j) * P->inner + q]);
    for (uint j = 0u; j < P->r; j++) s += exp(X[(o * P->r + j) * P->inner + q] - m);
    float ls = log(s);
    for (uint j = 0u; j < P->r; j++) {
        uint k = (o * P->r + j) * P->inner + q;
        O[k] = P->op == 1u ? X[k] - m - ls : exp(X[k] - m) / s;
    }
}
