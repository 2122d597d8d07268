/* model/layers.c -- layer kernels: see layers.h.
 *
 * The big products (convolutions with C > 1 and the dense layers) go through
 * im2col and a single-threaded CBLAS sgemm: parallelism is over the batch, by
 * the caller, never inside BLAS (two cores, one pool; BLAS threads on top of
 * ours would oversubscribe them). conv1 (C == 1, K = 9) is too thin for a
 * GEMM and is computed directly, vectorised over output channels.
 *
 * The loops themselves are in model/isa/kernels.c, one copy per instruction
 * set; these functions call the copy selected for the CPU (model/kernels.h). */
#include "model/layers.h"
#include "model/net.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "model/kernels.h"

void conv3x3_forward(float *out, float *col, const float *inp, const float *weight,
                     const float *bias, int B, int H, int W, int C, int OC, int relu)
{
    // out (B,H-2,W-2,OC), inp (B,H,W,C), weight (OC,3,3,C)
    if (C == 1) {
        kernels()->conv3x3_c1_forward(out, inp, weight, bias, B, H, W, OC, relu);
        return;
    }
    const int M = B * (H - 2) * (W - 2), K = 9 * C;
    kernels()->im2col3x3(col, inp, B, H, W, C);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, OC, K, 1.0f, col, K, weight, K,
                0.0f, out, OC);
    kernels()->bias_act(out, bias, M, OC, relu);
}

void conv3x3_pack(float *wt, const float *weight, int C, int OC, int k0, int k1)
{
    kernels()->conv3x3_pack(wt, weight, C, OC, k0, k1);
}

void conv3x3_rows_forward(float *out, int ldo, float *col, const float *inp, int H, int W,
                          int C, const float *wt, int ldw, const float *bias, int OC, int r0,
                          int r1, int OW, int relu)
{
    const kernel_ops *k = kernels();
    if (r1 <= r0 || OW < 1)
        return;
    if (k->conv3x3_direct &&
        k->conv3x3_direct(out, ldo, inp, H, W, C, wt, ldw, bias, OC, r0, r1, OW, relu) == 0)
        return;
    /* im2col of the wanted pixels, one sgemm against the packed weights */
    const int K = 9 * C, seg = 3 * C, M = (r1 - r0) * OW;
    for (int oh = r0; oh < r1; oh++)
        for (int ow = 0; ow < OW; ow++) {
            float *row = col + ((size_t)(oh - r0) * OW + ow) * K;
            for (int kh = 0; kh < 3; kh++)
                memcpy(row + kh * seg, inp + ((size_t)(oh + kh) * W + ow) * C,
                       (size_t)seg * sizeof(float));
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, OC, K, 1.0f, col, K, wt, ldw,
                0.0f, out, ldo);
    for (int i = 0; i < M; i++)
        k->bias_act(out + (size_t)i * ldo, bias, 1, OC, relu);
}

void conv3x3_backward(float *dinp, float *dweight, float *dbias, float *dcol,
                      const float *dout, const float *inp, const float *col,
                      const float *weight, int B, int H, int W, int C, int OC)
{
    if (C == 1) {
        kernels()->conv3x3_c1_backward(dinp, dweight, dbias, dout, inp, weight, B, H, W, OC);
        return;
    }
    const int M = B * (H - 2) * (W - 2), K = 9 * C;
    if (dweight) {
        kernels()->colsum_acc(dbias, dout, M, OC);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, K, M, 1.0f, dout, OC, col, K,
                    1.0f, dweight, K);
    }
    if (dinp) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, OC, 1.0f, dout, OC,
                    weight, K, 0.0f, dcol, K);
        kernels()->col2im3x3(dinp, dcol, B, H, W, C);
    }
}

void conv3x3_pool_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const uint8_t *idx, const float *pooled, const float *inp,
                           const float *weight, int B, int H, int W, int C, int OC)
{
    kernels()->conv3x3_pool_backward(dinp, dweight, dbias, dout, idx, pooled, inp, weight, B, H,
                                     W, C, OC);
}

void dense_forward(float *out, const float *inp, const float *weight, const float *bias,
                   int B, int IN, int OUT, int relu)
{
    // out (B,OUT), inp (B,IN), weight (OUT,IN)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OUT, IN, 1.0f, inp, IN, weight, IN,
                0.0f, out, OUT);
    kernels()->bias_act(out, bias, B, OUT, relu);
}

void dense_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                    const float *inp, const float *weight, int B, int IN, int OUT)
{
    if (dweight) {
        kernels()->colsum_acc(dbias, dout, B, OUT);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, B, 1.0f, dout, OUT, inp,
                    IN, 1.0f, dweight, IN);
    }
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT, 1.0f, dout, OUT,
                    weight, IN, 0.0f, dinp, IN);
}

void softmax_forward(float *probs, const float *logits, int B)
{
    for (int b = 0; b < B; b++) {
        const float *z = logits + b * 10;
        float *p = probs + b * 10;
        float m = z[0];
        for (int k = 1; k < 10; k++)
            m = z[k] > m ? z[k] : m;
        float s = 0.0f;
        for (int k = 0; k < 10; k++) {
            p[k] = expf(z[k] - m);
            s += p[k];
        }
        float inv = 1.0f / s;
        for (int k = 0; k < 10; k++)
            p[k] *= inv;
    }
}

double softmax_xent_forward(float *probs, const float *logits, const uint8_t *labels,
                            int B, int *correct)
{
    double total = 0.0;
    int ok = 0;
    softmax_forward(probs, logits, B);
    for (int b = 0; b < B; b++) {
        const float *z = logits + b * 10;
        const int am = net_argmax(z);
        const float m = z[am];
        double s = 0.0;
        for (int k = 0; k < 10; k++)
            s += exp((double)z[k] - m);
        total += log(s) - ((double)z[labels[b]] - m);
        ok += am == labels[b];
    }
    if (correct)
        *correct = ok;
    return total;
}

void softmax_xent_backward(float *dlogits, const float *probs, const uint8_t *labels,
                           int B, float scale)
{
    for (int b = 0; b < B; b++)
        for (int k = 0; k < 10; k++)
            dlogits[b * 10 + k] = (probs[b * 10 + k] - (k == labels[b] ? 1.0f : 0.0f)) * scale;
}

/* ---- naive references ---------------------------------------------------- */

void conv3x3_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                         int B, int H, int W, int C, int OC, int relu)
{
    const int OH = H - 2, OW = W - 2;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int oc = 0; oc < OC; oc++) {
                    double s = bias[oc];
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++)
                            for (int c = 0; c < C; c++)
                                s += (double)inp[((b * H + oh + kh) * W + ow + kw) * C + c] *
                                     weight[((oc * 3 + kh) * 3 + kw) * C + c];
                    if (relu && s < 0)
                        s = 0;
                    out[((b * OH + oh) * OW + ow) * OC + oc] = (float)s;
                }
}

void conv3x3_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, int B, int H, int W, int C,
                          int OC)
{
    const int OH = H - 2, OW = W - 2;
    if (dinp)
        memset(dinp, 0, (size_t)B * H * W * C * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int oc = 0; oc < OC; oc++) {
                    float d = dout[((b * OH + oh) * OW + ow) * OC + oc];
                    dbias[oc] += d;
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++)
                            for (int c = 0; c < C; c++) {
                                size_t xi = ((size_t)(b * H + oh + kh) * W + ow + kw) * C + c;
                                size_t wi = ((size_t)(oc * 3 + kh) * 3 + kw) * C + c;
                                dweight[wi] += d * inp[xi];
                                if (dinp)
                                    dinp[xi] += d * weight[wi];
                            }
                }
}

void dense_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                       int B, int IN, int OUT, int relu)
{
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OUT; o++) {
            double s = bias[o];
            for (int i = 0; i < IN; i++)
                s += (double)inp[b * IN + i] * weight[o * IN + i];
            if (relu && s < 0)
                s = 0;
            out[b * OUT + o] = (float)s;
        }
}

void dense_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int IN, int OUT)
{
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OUT; o++) {
            float d = dout[b * OUT + o];
            dbias[o] += d;
            for (int i = 0; i < IN; i++)
                dweight[o * IN + i] += d * inp[b * IN + i];
        }
    if (dinp)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < IN; i++) {
                double s = 0;
                for (int o = 0; o < OUT; o++)
                    s += (double)dout[b * OUT + o] * weight[o * IN + i];
                dinp[b * IN + i] = (float)s;
            }
}


/* ---- dispatched kernels --------------------------------------------------- */

void maxpool2_forward(float *out, uint8_t *idx, const float *inp, int B, int H, int W, int C)
{
    kernels()->maxpool2_forward(out, idx, inp, B, H, W, C);
}

void maxpool2_backward(float *dinp, const float *dout, const uint8_t *idx, const float *mask,
                       int B, int H, int W, int C)
{
    kernels()->maxpool2_backward(dinp, dout, idx, mask, B, H, W, C);
}

void relu_backward_inplace(float *d, const float *y, int n)
{
    kernels()->relu_backward_inplace(d, y, n);
}

void conv1_pool_forward(float *out, uint8_t *idx, const float *inp, const float *weight,
                        const float *bias, int B)
{
    kernels()->conv1_pool_forward(out, idx, inp, weight, bias, B, 0, 13);
}

void conv1_pool_forward_rows(float *out, const float *inp, const float *weight,
                             const float *bias, int r0, int r1)
{
    kernels()->conv1_pool_forward(out, NULL, inp, weight, bias, 1, r0, r1);
}

void conv1_pool_backward(float *dweight, float *dbias, const float *dout, const uint8_t *idx,
                         const float *out, const float *inp, int B)
{
    kernels()->conv1_pool_backward(dweight, dbias, dout, idx, out, inp, B);
}

void conv1_pool_backward_input(float *dinp, const float *dout, const uint8_t *idx,
                               const float *out, const float *weight, int B)
{
    kernels()->conv1_pool_backward_input(dinp, dout, idx, out, weight, B);
}
