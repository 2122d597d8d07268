/* api/oip.h -- the Open Inference Protocol (KServe v2) for the MNIST model:
 * an infer request (JSON, with Triton's binary tensor data extension) parsed
 * into a validated oip_request, and the infer response written back. No
 * HTTP here: the HTTP layer hands over the body and one header, and sends
 * what oip_write_response produces.
 *
 * The model has one input and one output:
 *   input "input", one of
 *     FP32  [N,28,28,1] (also [N,28,28], [N,1,28,28], [N,784]): pixels in
 *           [0,1], white digit on black, fed to the network as they are;
 *     UINT8 the same shapes, pixels 0..255 (divided by 255);
 *     BYTES [N] or [N,1]: each element a PNG file (in JSON: base64 text),
 *           decoded and preprocessed like POST /predict.
 *   output "probabilities", FP32 [N,10]; with the classification extension
 *     ("classification": k in the output's parameters) BYTES [N,k] holding
 *     "score:index" strings, highest score first.
 * N is 1..limits.max_images.
 *
 * The explain extension (POST .../explain) takes the same request, with
 * two optional request parameters: "target" (the class explained, 0..9)
 * and "steps" (Integrated Gradients steps); api/v2.c answers it.
 *
 * The binary tensor data extension: when the Inference-Header-Content-Length
 * header is given, the body is that many bytes of JSON followed by the
 * tensors whose parameters carry "binary_data_size", in the order of the
 * inputs, little-endian, BYTES elements each a 4-byte little-endian length
 * and the bytes. A header of 0 makes the whole body one FP32 tensor for
 * "input" (N = body length / 3136) and every output binary. The request
 * parameter "binary_data_output" and an output's "binary_data" ask for
 * binary outputs.
 *
 * Memory: nothing is allocated from a declared size before it is checked
 * against the body and the limits; every allocation is bounded by the body
 * length or by max_images images. */
#ifndef MNISTD_API_OIP_H
#define MNISTD_API_OIP_H

#include <stddef.h>
#include <stdint.h>

#include "model/net.h"
#include "server/strbuf.h"

#define OIP_INPUT_NAME "input"
#define OIP_OUTPUT_NAME "probabilities"
#define OIP_EXPLAIN_OUTPUT "attributions"
#define OIP_ID_MAX 256          /* longest request id echoed */
#define OIP_IMAGE_BYTES (NET_IN_PIXELS * 4)  /* one FP32 image */
#define OIP_EXPLAIN_STEPS_MAX 1024  /* the most any setting allows (EXPLAIN_STEPS_LIMIT) */

typedef enum { OIP_FP32 = 1, OIP_UINT8, OIP_BYTES } oip_dtype;

/* What a parse returns: 0, or the HTTP status of the error. */
enum {
    OIP_OK = 0,
    OIP_BAD_REQUEST = 400,   /* malformed JSON, wrong field, shape, datatype, length */
    OIP_TOO_LARGE = 413,     /* more images than max_images */
    OIP_UNPROCESSABLE = 422, /* well formed, but a pixel is outside its range */
    OIP_NOMEM = 500,
};

typedef struct {
    int max_images;          /* images per request (--max-images) */
} oip_limits;

typedef struct oip_request {
    oip_dtype dtype;
    int n;                   /* images: the first dimension */
    int nshape;              /* the shape as sent (echoed in errors only) */
    int64_t shape[4];
    /* FP32 and UINT8: exactly one of these holds n*784 values */
    const uint8_t *bin;      /* binary: the tensor inside the body */
    float *pixels;           /* JSON: the values as network input (owned) */
    /* BYTES: n elements, pointing into the body or into decoded */
    const uint8_t **elem;    /* owned array of n pointers */
    uint32_t *elem_len;      /* owned array of n lengths */
    uint8_t *decoded;        /* base64-decoded JSON elements (owned) */
    /* the answer asked for */
    char id[OIP_ID_MAX + 1];
    int has_id;
    int out_binary;          /* the output goes in binary form */
    int class_k;             /* classification: top k (0: probabilities) */
    /* the explain extension: request parameters "target" (0..9; -1 when
     * absent) and "steps" (1..OIP_EXPLAIN_STEPS_MAX; 0 when absent) */
    int explain_target;
    int explain_steps;
} oip_request;

/* Parses an infer request. body/len is the whole request body; header_len
 * is the Inference-Header-Content-Length value as sent (NULL: no header).
 * On OIP_OK *req is filled (release with oip_request_free; pointers into
 * the body stay valid as long as the body). Otherwise returns the status,
 * err holds a message for the client, and *req owns nothing. */
int oip_parse_request(const uint8_t *body, size_t len, const char *header_len,
                      const oip_limits *lim, oip_request *req, char *err, size_t errlen);

/* Like oip_parse_request, with the fast path for numeric "data" arrays
 * switched off (every value goes through cJSON): for tests that compare the
 * two paths. */
int oip_parse_request_slow(const uint8_t *body, size_t len, const char *header_len,
                           const oip_limits *lim, oip_request *req, char *err, size_t errlen);

/* Frees what *req owns and zeroes it. */
void oip_request_free(oip_request *req);

/* Frees the input data (and forgets the pointers into the body), keeping
 * what the response needs: n, id and the outputs asked for. */
void oip_request_drop_data(oip_request *req);

/* Image i (FP32 or UINT8) as the network's 784 inputs. */
void oip_request_pixels(const oip_request *req, int i, float out[NET_IN_PIXELS]);

/* Writes the infer response for req: probs holds n rows of NET_CLASSES.
 * *body gets the body (caller frees with free()), *len its length, and
 * *json_len the length of the JSON part: equal to *len for a JSON answer,
 * smaller when binary outputs follow (send it as
 * Inference-Header-Content-Length, with Content-Type
 * application/octet-stream). Returns 0, or -1 when out of memory. */
int oip_write_response(const oip_request *req, const float *probs, const char *model_name,
                       const char *model_version, char **body, size_t *len, size_t *json_len);

/* The explain extension's answer for req's n images: the attributions
 * (n x 784, rows of the 28x28 input), the class each explains (n), the
 * probabilities (n x 10) and completeness's error (n). */
typedef struct {
    const float *attributions;
    const int *target;
    const float *probs;
    const float *delta;
} oip_explanation;

/* Writes the explain response: JSON always (binary outputs are not
 * offered), outputs "attributions" FP32 [n,28,28], "target" INT32 [n],
 * "probabilities" FP32 [n,10] and "delta" FP32 [n], and the parameters
 * method, baseline and steps. *body (the caller frees) and *len as for
 * oip_write_response. 0, or -1 when out of memory. */
int oip_write_explain_response(const oip_request *req, const oip_explanation *ex, int steps,
                               const char *model_name, const char *model_version, char **body,
                               size_t *len);

/* Appends the top-k classification "score:index" (score as "%f") of one
 * row of probabilities: the strings Triton's classification extension
 * gives, highest score first, ties by lower index. Writes the k strings,
 * each NUL-terminated, into out[k][24]. */
void oip_top_k(const float probs[NET_CLASSES], int k, char out[][24]);

#endif
