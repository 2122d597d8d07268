/* model/net.h -- the reference convolutional network of mnistd.
 *
 * Tensor layout (written down once, kept everywhere in model/):
 *   - activations are NHWC: (B, H, W, C), row-major float32;
 *   - convolution weights are (OC, KH, KW, IC); dense weights are (OUT, IN);
 *     biases are (OUT);
 *   - Flatten reads the (3, 3, 64) activation in (h, w, c) order, as Keras's
 *     channels_last Flatten does;
 *   - an input image is (28, 28, 1) float32 in [0, 1] (pixel / 255), white
 *     digit on black, as in MNIST.
 *
 * The network (the reference Keras recipe), 93,322 parameters:
 *   conv1 3x3x1->32 relu  28x28x1 -> 26x26x32, maxpool 2x2 -> 13x13x32
 *   conv2 3x3x32->64 relu 13x13x32 -> 11x11x64, maxpool 2x2 -> 5x5x64
 *   conv3 3x3x64->64 relu 5x5x64 -> 3x3x64, flatten -> 576
 *   fc1 576->64 relu, fc2 64->10, softmax.
 *
 * All parameters live in ONE flat float array of NET_NUM_PARAMS floats, in the
 * order of net_tensors[]; gradients and Adam moments use the same layout. */
#ifndef MNISTD_NET_H
#define MNISTD_NET_H

#include <stddef.h>
#include <stdint.h>

#define NET_IN_H 28
#define NET_IN_W 28
#define NET_IN_PIXELS (NET_IN_H * NET_IN_W)
#define NET_CLASSES 10
#define NET_NUM_PARAMS 93322
#define NET_NUM_TENSORS 10
#define NET_ARCH_NAME "mnist-cnn-v1"

/* One named tensor of the flat parameter array. */
typedef struct {
    const char *name;   /* e.g. "conv1.weight" (the safetensors name) */
    int ndim;
    int shape[4];
    size_t offset;      /* in floats, into the flat array */
    size_t count;       /* number of floats */
    int fan_in, fan_out;/* for glorot-uniform init; 0 for biases */
} net_tensor;

extern const net_tensor net_tensors[NET_NUM_TENSORS];

/* Named slices of a flat parameter (or gradient, or moment) array. */
typedef struct {
    float *conv1_w; /* (32, 3, 3, 1)  */
    float *conv1_b; /* (32)           */
    float *conv2_w; /* (64, 3, 3, 32) */
    float *conv2_b; /* (64)           */
    float *conv3_w; /* (64, 3, 3, 64) */
    float *conv3_b; /* (64)           */
    float *fc1_w;   /* (64, 576)      */
    float *fc1_b;   /* (64)           */
    float *fc2_w;   /* (10, 64)       */
    float *fc2_b;   /* (10)           */
} net_params;

/* Points p's fields into flat (NET_NUM_PARAMS floats). */
void net_params_map(net_params *p, float *flat);

/* Keras defaults: glorot-uniform kernels, zero biases, from a seed. */
void net_init(float *params, uint64_t seed);

/* ---- Inference -------------------------------------------------------- */

/* The class with the highest score among NET_CLASSES probabilities or
 * logits (the first one on a tie). */
static inline int net_argmax(const float *v)
{
    int best = 0;
    for (int k = 1; k < NET_CLASSES; k++)
        if (v[k] > v[best])
            best = k;
    return best;
}

/* A context owns every buffer a forward pass needs for up to max_batch
 * images, allocated once; forward never allocates. threads is how many
 * threads (the caller's included) a forward pass may use; 0 = all cores.
 * Returns NULL on allocation failure. Free with net_ctx_free. A context is
 * used by one caller at a time. */
typedef struct net_ctx net_ctx;
net_ctx *net_ctx_create(int max_batch, int threads);
void net_ctx_free(net_ctx *ctx);

/* Rearranges params for the kernels once: later net_forward calls with this
 * same pointer use that copy instead of rearranging the weights each call
 * (a few microseconds, which count for one image). params must not change
 * while prepared: prepare again after changing them; NULL forgets them. */
void net_ctx_prepare(net_ctx *ctx, const float *params);

/* Forward pass of B images (B*784 floats, NHWC) with params; writes B*10
 * softmax probabilities to probs (and, if logits is not NULL, B*10 logits).
 * Returns 0, or -1 if B is out of 1..max_batch. */
int net_forward(net_ctx *ctx, const float *params, const float *x, int B,
                float *probs, float *logits);

/* ---- Training ---------------------------------------------------------- */

/* A training context owns the activations, saved max-pool argmaxes and
 * per-thread gradient buffers for up to max_batch samples; allocated once.
 * threads as for net_ctx_create. NULL on allocation failure. */
typedef struct net_train_ctx net_train_ctx;
net_train_ctx *net_train_ctx_create(int max_batch, int threads);
void net_train_ctx_free(net_train_ctx *ctx);

/* Forward and backward pass of B samples with params. Writes to grads
 * (NET_NUM_PARAMS floats, OVERWRITTEN, not accumulated) the gradient of the
 * mean sparse categorical cross-entropy over the batch; returns that mean
 * loss. If logits is not NULL it receives B*10 logits; if correct is not
 * NULL, the number of samples whose argmax equals the label. labels are
 * 0..9. The result is the same bit for bit for the same inputs and thread
 * count. Returns NAN if B is out of 1..max_batch. */
float net_train_grads(net_train_ctx *ctx, const float *params, const float *x,
                      const uint8_t *labels, int B, float *grads, float *logits,
                      int *correct);

/* The gradient of one logit per sample with respect to the input, which
 * training never computes: dx (B*784 floats, OVERWRITTEN) receives
 * d logits[b][target[b]] / d x[b] for each of the B samples (x as for
 * net_forward); logits (may be NULL) receives their B*10 logits. Uses the
 * training context's buffers and threads and writes no parameter gradient.
 * Returns 0, or -1 if B is out of 1..max_batch or a target is not a class. */
int net_input_grads(net_train_ctx *ctx, const float *params, const float *x,
                    const uint8_t *target, int B, float *dx, float *logits);

/* One Adam step over n parameters (Keras semantics: t is the 1-based step
 * count; lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t * m / (sqrt(v) +
 * eps), eps as given, Keras default 1e-7). */
void net_adam_step(float *params, const float *grads, float *m, float *v,
                   size_t n, float lr, float b1, float b2, float eps, long t);

#endif
