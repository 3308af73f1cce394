// Convolutions (shaders/conv.wgsl): a tiled implicit GEMM (M = N*OH*OW output pixels, N =
// output channels of a group, K = KH*KW*Cin/groups; 64x64 tiles in local memory, 16x16
// work-items each computing 4x4 outputs) with bias, activation and residual add fused into
// the epilogue; a depthwise kernel; and the transposed convolution. Tensors are addressed
// through (n, c, y, x) strides, so NHWC and NCHW share the code. Weights are HWIO.

typedef struct {
    uint n, cin, h, w, cout, oh, ow, kh, kw, sy, sx, dy, dx, py, px, groups;
    uint isn, isc, isy, isx, osn, osc, osy, osx;
    uint act, res_mode, has_bias, cpg;
    float p0, p1;
    uint opg, pad;
} ConvP;

inline float conv_finish(__constant ConvP* P, float v, uint oc, uint oidx, __global const float* Bias, __global const float* Res) {
    if (P->has_bias == 1u) v += Bias[oc];
    if (P->res_mode == 1u) return act_fn(v + Res[oidx], P->act, P->p0, P->p1);
    if (P->res_mode == 2u) return act_fn(v, P->act, P->p0, P->p1) + Res[oidx];
    return act_fn(v, P->act, P->p0, P->p1);
}

#define TM 64u
#define TN 64u
#define TK 16u

inline float conv_a(__constant ConvP* P, __global const float* X, uint m, uint k, uint g, uint M, uint K) {
    if (m >= M || k >= K) return 0.0f;
    uint ox = m % P->ow, t = m / P->ow, oy = t % P->oh, b = t / P->oh;
    uint ci = k % P->cpg, t2 = k / P->cpg, kx = t2 % P->kw, ky = t2 / P->kw;
    int iy = (int)(oy * P->sy + ky * P->dy) - (int)P->py;
    int ix = (int)(ox * P->sx + kx * P->dx) - (int)P->px;
    if (iy < 0 || ix < 0 || iy >= (int)P->h || ix >= (int)P->w) return 0.0f;
    return X[b * P->isn + (g * P->cpg + ci) * P->isc + (uint)iy * P->isy + (uint)ix * P->isx];
}

__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void conv_gemm(__constant ConvP* P, __global const float* X, __global const float* Wt, __global const float* Bias,
               __global const float* Res, __global float* O) {
    __local float As[TM * TK];
    __local float Bs[TN * TK];
    uint M = P->n * P->oh * P->ow, K = P->kh * P->kw * P->cpg;
    uint g = get_group_id(2), m0 = get_group_id(1) * TM, n0 = get_group_id(0) * TN;
    uint lx = get_local_id(0), ly = get_local_id(1), t = ly * 16u + lx;
    float acc[4][4];
    #pragma unroll
    for (uint i = 0u; i < 4u; i++) {
        #pragma unroll
        for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0f;
    }
    for (uint k0 = 0u; k0 < K; k0 += TK) {
        #pragma unroll
        for (uint r = 0u; r < 4u; r++) {
            uint idx = t + r * 256u;
            As[idx] = conv_a(P, X, m0 + idx % TM, k0 + idx / TM, g, M, K);
            uint nn = idx % TN, kb = k0 + idx / TN;
            Bs[idx] = (kb < K && n0 + nn < P->opg) ? Wt[kb * P->cout + g * P->opg + n0 + nn] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        #pragma unroll 4
        for (uint kk = 0u; kk < TK; kk++) {
            float a[4], b[4];
            #pragma unroll
            for (uint i = 0u; i < 4u; i++) {
                a[i] = As[kk * TM + ly * 4u + i];
                b[i] = Bs[kk * TN + lx * 4u + i];
            }
            #pragma unroll
            for (uint i = 0u; i < 4u; i++) {
                #pragma unroll
                for (uint j = 0u; j < 4u; j++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (uint i = 0u; i < 4u; i++) {
        uint m = m0 + ly * 4u + i;
        if (m >= M) continue;
        uint ox = m % P->ow, tt = m / P->ow, oy = tt % P->oh, b = tt / P->oh;
        for (uint j = 0u; j < 4u; j++) {
            uint nn = n0 + lx * 4u + j;
            if (nn >= P->opg) continue;
            uint oc = g * P->opg + nn;
            uint oidx = b * P->osn + oc * P->osc + oy * P->osy + ox * P->osx;
            O[oidx] = conv_finish(P, acc[i][j], oc, oidx, Bias, Res);
        }
    }
}

// One work-item per output element; channel multiplier 1 (cout == cin == groups).
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void depthwise(__constant ConvP* P, __global const float* X, __global const float* Wt, __global const float* Bias,
               __global const float* Res, __global float* O) {
    uint i = gid2();
    if (i >= P->n * P->cout * P->oh * P->ow) return;
    // the channel fastest (contiguous for NHWC)
    uint c = i % P->cout, t = i / P->cout, ox = t % P->ow, t2 = t / P->ow, oy = t2 % P->oh, b = t2 / P->oh;
    float s = 0.0f;
    for (uint ky = 0u; ky < P->kh; ky++) {
        int iy = (int)(oy * P->sy + ky * P->dy) - (int)P->py;
        if (iy < 0 || iy >= (int)P->h) continue;
        for (uint kx = 0u; kx < P->kw; kx++) {
            int ix = (int)(ox * P->sx + kx * P->dx) - (int)P->px;
            if (ix < 0 || ix >= (int)P->w) continue;
            s = fma(X[b * P->isn + c * P->isc + (uint)iy * P->isy + (uint)ix * P->isx], Wt[(ky * P->kw + kx) * P->cout + c], s);
        }
    }
    uint oidx = b * P->osn + c * P->osc + oy * P->osy + ox * P->osx;
    O[oidx] = conv_finish(P, s, c, oidx, Bias, Res);
}

// Transposed convolution (NCHW strides), gathered per output element: weights are ONNX's
// [cin, cout / groups, kh, kw]; cpg = input channels per group, opg = outputs per group.
__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void conv_transpose(__constant ConvP* P, __global const float* X, __global const float* Wt, __global const float* Bias,
                    __global float* O) {
    uint i = gid2();
    if (i >= P->n * P->cout * P->oh * P->ow) return;
    uint ox = i % P->ow, t = i / P->ow, oy = t % P->oh, t2 = t / P->oh, oc = t2 % P->cout, b = t2 / P->cout;
    uint g = oc / P->opg, ocg = oc % P->opg;
    float s = P->has_bias == 1u ? Bias[oc] : 0.0f;
    for (uint ci = g * P->cpg; ci < (g + 1u) * P->cpg; ci++) {
        for (uint ky = 0u; ky < P->kh; ky++) {
            int ty = (int)(oy + P->py) - (int)(ky * P->dy);
            if (ty < 0 || ty % (int)P->sy != 0) continue;
            uint iy = (uint)ty / P->sy;
            if (iy >= P->h) continue;
            for (uint kx = 0u; kx < P->kw; kx++) {
                int tx = (int)(ox + P->px) - (int)(kx * P->dx);
                if (tx < 0 || tx % (int)P->sx != 0) continue;
                uint ix = (uint)tx / P->sx;
                if (ix >= P->w) continue;
                s = fma(X[b * P->isn + ci * P->isc + iy * P->isy + ix * P->isx], Wt[((ci * P->opg + ocg) * P->kh + ky) * P->kw + kx], s);
            }
        }
    }
    O[b * P->osn + oc * P->osc + oy * P->osy + ox * P->osx] = s;
}
