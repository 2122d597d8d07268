/* server/log.h -- the daemon's log: one line per event on stderr.
 *
 * Every layer logs through this module. An event has a level, a message and
 * typed fields; the module formats them and escapes every string itself, so
 * a path or a message holding quotes, backslashes or control characters
 * still gives a valid line. Two formats (set once at startup):
 *   json  {"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"...","key":value,...}
 *   text  2026-01-02T03:04:05.678Z info MESSAGE "key":value,...
 * A line is written with one call, so lines of concurrent threads do not
 * interleave. Usage:
 *   log_event(LOG_INFO, "model loaded", LOG_STR("model", path), LOG_STR("version", v));
 *   log_event(LOG_INFO, "stopped"); */
#ifndef MNISTD_LOG_H
#define MNISTD_LOG_H

#include <stddef.h>

typedef enum { LOG_FORMAT_JSON = 0, LOG_FORMAT_TEXT = 1 } log_format;

typedef enum { LOG_INFO = 0, LOG_WARN, LOG_ERROR } log_level;

typedef enum {
    LOG_T_END = 0, /* ends the list (added by log_event) */
    LOG_T_STR,     /* a string, escaped; NULL is written as "" */
    LOG_T_INT,     /* a signed integer */
    LOG_T_UINT,    /* an unsigned integer */
    LOG_T_BOOL,    /* true / false */
    LOG_T_DBL,     /* a number, 6 significant digits; NaN and infinities as null */
    LOG_T_MILLI,   /* microseconds, written as milliseconds with 3 decimals */
    LOG_T_JSON,    /* a JSON value the caller built (written as is) */
} log_type;

typedef struct {
    log_type type;
    const char *key;
    union {
        const char *s;
        long long i;
        unsigned long long u;
        double d;
    };
} log_field;

#define LOG_STR(k, v) ((log_field){.type = LOG_T_STR, .key = (k), .s = (v)})
#define LOG_INT(k, v) ((log_field){.type = LOG_T_INT, .key = (k), .i = (long long)(v)})
#define LOG_UINT(k, v) ((log_field){.type = LOG_T_UINT, .key = (k), .u = (unsigned long long)(v)})
#define LOG_BOOL(k, v) ((log_field){.type = LOG_T_BOOL, .key = (k), .i = (v) ? 1 : 0})
#define LOG_DBL(k, v) ((log_field){.type = LOG_T_DBL, .key = (k), .d = (double)(v)})
#define LOG_MILLI(k, us) ((log_field){.type = LOG_T_MILLI, .key = (k), .u = (unsigned long long)(us)})
#define LOG_JSON(k, v) ((log_field){.type = LOG_T_JSON, .key = (k), .s = (v)})
#define LOG_END ((log_field){.type = LOG_T_END})

/* Sets the format of every line that follows (default json). Call at
 * startup, before other threads log. */
void log_set_format(log_format f);
log_format log_get_format(void);

/* Gathering of lines: with ms > 0, lines go to a buffer that a thread of
 * this module writes at most ms milliseconds later, in one write; a
 * warning or an error writes the buffer and itself at once, so does a full
 * buffer, and so does log_flush (also run at exit). ms 0 (the default)
 * writes each line at once. Call once at startup, before other threads
 * log; returns 0, or -1 when the thread cannot start (lines are then
 * written at once). A process that is killed loses what it gathered. */
int log_set_flush_ms(int ms);
/* Writes what is gathered, and stops the thread (lines are then written
 * at once). Safe to call more than once. */
void log_flush(void);

/* Writes one event: level, message, then any number of log_field. */
#define log_event(level, ...) log_emit(NULL, (level), __VA_ARGS__, LOG_END)

/* The same, with the whole line after the timestamp given for the text
 * format (text may be NULL: then as log_event). The access log uses it for
 * its "METHOD PATH STATUS DURATIONms BYTES REMOTE" lines. */
#define log_event_text(text, level, ...) log_emit((text), (level), __VA_ARGS__, LOG_END)

void log_emit(const char *text, log_level level, const char *msg, ...);

/* Appends s as JSON string content (no quotes) to buf at *n, keeping
 * *n < cap - 1 and buf NUL-terminated. Escapes quotes, backslashes and
 * control characters; a string cut at cap is cut between UTF-8 sequences.
 * Returns 0, or -1 when s was cut. */
int json_escape(char *buf, size_t cap, size_t *n, const char *s);

#endif
