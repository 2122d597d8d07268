/* api/infer.h -- inference shared by POST /predict, POST /explain and the
 * v2 infer and explain routes (api/predict.c, api/explain.c): the same
 * refusals, limits, PNG decoding, batcher and explanation queue. */
#ifndef MNISTD_API_INFER_H
#define MNISTD_API_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "api/multipart.h"
#include "api/respond.h"
#include "model/preprocess.h"
#include "server/workq.h"

/* Why a prediction (or its request) was refused: the reason label of
 * mnistd_predict_rejected_total (names in api/predict.c). */
typedef enum {
    MREJ_QUEUE_FULL = 0, /* 503: the inference queue is full */
    MREJ_DEADLINE,       /* 504: waited past --request-timeout-ms */
    MREJ_NOT_READY,      /* 503: no model loaded */
    MREJ_SHUTTING_DOWN,  /* 503: the daemon is stopping */
    MREJ_BODY_TOO_LARGE, /* 413: over --max-body-bytes */
    MREJ_TOO_MANY_IMAGES,/* 413: over --max-images parts */
    MREJ_LENGTH_REQUIRED,/* 411 */
    MREJ_MEDIA_TYPE,     /* 415 */
    MREJ_BAD_REQUEST,    /* 400: not a PNG, corrupt PNG, bad multipart */
    MREJ_UNPROCESSABLE,  /* 422: too many pixels, no ink */
    MREJ_COUNT
} reject_reason;

/* api_infer_refused: when the daemon is stopping or has no model, answers
 * 503 and returns 1; else 0. api_body_begin: checks Content-Length against
 * --max-body-bytes (413), 411 without a length, and allocates the body.
 * api_decode_png: one PNG into input (784 floats) as /predict preprocesses
 * it, and where the network's field lies over it into *field (may be
 * NULL); returns 0, or answers the error (naming part when > 0) in *ret and
 * returns -1. api_body_images: the PNGs of a complete body, as /predict
 * takes them (r->multipart: each part, at most max_images, else the whole
 * body), pointing into the body: *parts is one for a raw body, else an
 * array of max_images places that api_body_images_free(*parts, one)
 * releases (on both paths, error or not); returns how many, or answers the
 * error (413 naming limit_flag, 400, 415, 500) in *ret and returns -1. api_queue_jobs: frees the body and hands the request's
 * nimages jobs (their workq_job members stride bytes apart from first) to
 * the queue q with a deadline timeout_ms after the request's start; the
 * connection stays suspended until the last job is answered, and a refusal
 * (full, stopping) is kept in r->submit_error. api_submit_jobs: that, for
 * r->jobs on the batcher's queue (--request-timeout-ms). api_reject: an
 * error answer counted as a refused prediction (or explanation).
 * api_infer_finish_once: the start of an inference route's handler once the
 * body is complete: back from the batcher it answers with answer(r); on a
 * later call it does nothing; the first time it refuses a body over
 * --max-body-bytes with 413 (error too_large, the limit as the detail; with
 * too_large NULL the limit is the error). Returns 1 with *ret when the
 * handler is done, 0 when it goes on with the body. */
int api_infer_refused(api_request *r);
enum MHD_Result api_body_begin(api_request *r);
/* The body of /predict and /explain: one image (image/png,
 * application/octet-stream, curl -d's application/x-www-form-urlencoded, or
 * no type) or a multipart/form-data upload (r->multipart set); any other
 * Content-Type is answered 415. Then api_body_begin. */
enum MHD_Result api_image_body_begin(api_request *r);
int api_decode_png(api_request *r, const uint8_t *png, size_t len, float *input, img_field *field,
                   int part, enum MHD_Result *ret);
int api_body_images(api_request *r, mp_part *one, mp_part **parts, int max_images,
                    const char *limit_flag, enum MHD_Result *ret);
void api_body_images_free(mp_part *parts, mp_part *one);
enum MHD_Result api_queue_jobs(api_request *r, workq *q, workq_job *first, size_t stride,
                               int timeout_ms);
enum MHD_Result api_submit_jobs(api_request *r);
/* api_queue_failed: after a queue (api_queue_jobs), answers the refusal of
 * the submit or the first job that failed (deadline, no model, error) in
 * *ret, in the words of that queue, and returns 1; 0 when every job
 * succeeded. api_jobs_failed: that, for r->jobs on the batcher. */
typedef struct {
    const char *full;          /* the 503's detail when the queue was full */
    const char *late;          /* "<late> within <timeout_ms> ms (<timeout_flag>)": the 504's */
    int timeout_ms;
    const char *timeout_flag;
    const char *failed;        /* the 500's detail */
} api_queue_words;
int api_queue_failed(api_request *r, const workq_job *first, size_t stride, const api_queue_words *w,
                     enum MHD_Result *ret);
int api_jobs_failed(api_request *r, enum MHD_Result *ret);
/* The explanation queue's (api/explain.c), for POST /explain and the v2
 * explain extension: api_explain_submit frees the body and hands r->xjobs
 * (nimages, inputs, targets and steps set) to the explainer, the
 * connection suspended until the last is answered; api_explain_failed,
 * after it, answers the first failure (queue full, deadline, no model) in
 * *ret and returns 1, or 0 when every image was explained. */
enum MHD_Result api_explain_submit(api_request *r);
int api_explain_failed(api_request *r, enum MHD_Result *ret);
enum MHD_Result api_reject(api_request *r, reject_reason why, int status, const char *error,
                           const char *detail, const char *const *headers);
int api_infer_finish_once(api_request *r, enum MHD_Result (*answer)(api_request *), const char *too_large,
                          enum MHD_Result *ret);

#endif
