/* server/config.h -- the daemon's settings: flags, environment, defaults.
 *
 * Every setting has a flag (--max-batch 32 or --max-batch=32) and an
 * environment variable (MNISTD_MAX_BATCH); the flag wins over the
 * environment, the environment over the default. Every value is checked
 * (number format, range, enum) and a bad one is a usage error naming the
 * flag or the variable. config_usage() prints the table of every setting. */
#ifndef MNISTD_CONFIG_H
#define MNISTD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "server/log.h"

#define CONFIG_PATH_MAX 1024
/* The API token: 16..CONFIG_TOKEN_MAX visible ASCII characters (RFC 6750
 * b64token plus the other printable characters but no spaces). */
#define CONFIG_TOKEN_MIN 16
#define CONFIG_TOKEN_MAX 256

typedef struct {
    int port;                   /* 0..65535; 0 = pick a free port */
    char bind[64];              /* numeric IPv4 or IPv6 address */
    char model[CONFIG_PATH_MAX];/* model file to serve (or to seed model_dir with) */
    char model_dir[CONFIG_PATH_MAX]; /* model repository, "" = none */
    int keep_models;            /* versions kept, 0 = all */
    int watch_s;                /* seconds between looks at the active record, 0 = off */
    char data[CONFIG_PATH_MAX]; /* MNIST directory, "" = none */
    int threads;                /* inference workers */
    int http_threads;           /* libmicrohttpd thread pool size */
    int max_batch;              /* images per forward pass */
    int batch_timeout_us;       /* longest wait for a batch to fill */
    int max_queue;              /* images waiting for a worker */
    int max_images;             /* images per request (multipart parts) */
    uint64_t max_body_bytes;    /* request body limit */
    uint64_t max_image_pixels;  /* decoded width*height limit */
    int max_image_side;         /* decoded width and height limit */
    int max_connections;        /* open connections, all clients */
    int max_connections_per_ip; /* open connections from one address, 0 = off */
    int connection_timeout;     /* idle seconds before a connection is closed */
    int request_timeout_ms;     /* deadline of a prediction from its arrival */
    int max_header_bytes;       /* per-connection memory for the request line and headers */
    int explain_threads;        /* explanation workers */
    int explain_queue;          /* images waiting for an explanation worker */
    int explain_max_images;     /* images per POST /explain request */
    int explain_max_steps;      /* Integrated Gradients steps a request may ask for */
    int explain_timeout_ms;     /* deadline of an explanation from its arrival */
    int shutdown_timeout_s;     /* grace a running training job gets on SIGTERM */
    int job_history;            /* finished training jobs kept for GET /train */
    char token_file[CONFIG_PATH_MAX]; /* file holding the API token, "" = none */
    char tls_cert[CONFIG_PATH_MAX];   /* PEM certificate (and chain): HTTPS only, "" = HTTP */
    char tls_key[CONFIG_PATH_MAX];    /* PEM private key of tls_cert */
    char tls_client_ca[CONFIG_PATH_MAX]; /* PEM CA of client certificates (mutual TLS), "" = none */
    int tls_reload_s;           /* seconds between looks at the TLS files, 0 = on SIGHUP only */
    char model_name[64];        /* the model's name in the v2 protocol (/v2/models/{name}) */
    log_format log_format;
    int log_flush_ms;           /* 0 = each log line written at once; N = gathered, written within N ms */
    char kernels[16];           /* auto, portable, avx2, avx512 (model/kernels.h) */
    char precision[8];          /* fp32 or int8 (model/quant.h): the arithmetic of predictions */
    /* Not settings of their own: filled by config_parse from token_file or
     * the MNISTD_TOKEN variable, never printed (config_to_json and
     * config_usage leave them out). token_len 0 = no token: every endpoint
     * is open. token_source says where it came from ("MNISTD_TOKEN" or the
     * file's path), token_warning is "" or why the file's mode is risky. */
    int model_given;            /* --model or MNISTD_MODEL was set */
    char token[CONFIG_TOKEN_MAX + 1];
    size_t token_len;
    char token_source[CONFIG_PATH_MAX];
    char token_warning[256];
} mnistd_config;

/* Fills *c with the defaults. */
void config_defaults(mnistd_config *c);

/* Parses argv[1..argc) (argv[0] is the command name, e.g. "serve") over
 * defaults and the environment (getenv), then loads the API token: from
 * --token-file / MNISTD_TOKEN_FILE when set, else from MNISTD_TOKEN. A token
 * file must be a regular file, not writable by group or others, holding one
 * token (a trailing newline is ignored) of CONFIG_TOKEN_MIN..CONFIG_TOKEN_MAX
 * visible ASCII characters; anything else (unreadable, empty, too short,
 * spaces inside) is a usage error. A group- or world-readable file is
 * accepted (container secret mounts are 0444/0644) with token_warning set.
 * Returns 0 when the daemon should run, 1 when --help was asked (usage
 * already printed to out), or -1 on a usage error with err set (the caller
 * prints it and exits with status 2). */
int config_parse(mnistd_config *c, int argc, char **argv, FILE *out,
                 char *err, size_t errlen);

/* Prints every flag, its environment variable, its default and meaning. */
void config_usage(FILE *f);

/* Writes the effective settings as one JSON object (no newline) into buf.
 * Returns the length written, truncated at buflen-1. */
size_t config_to_json(const mnistd_config *c, char *buf, size_t buflen);

#endif
