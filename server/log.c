/* server/log.c -- see log.h. */
#include "server/log.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/clock.h"

/* A line longer than this is cut (still a valid line): the longest event,
 * the startup line with every setting, takes about 6 KiB. */
#define LINE_MAX_BYTES 16384

static _Atomic int format = LOG_FORMAT_JSON;

static const char *const level_names[] = {"info", "warn", "error"};

/* ---- gathering lines (log_set_flush_ms) ------------------------------------ */

#define GATHER_BYTES 65536

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    _Atomic int on;     /* lines go to buf */
    int stop;           /* under mu: the thread ends */
    int ms;
    size_t n;
    char buf[GATHER_BYTES];
} gather = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void write_all(const char *p, size_t n)
{
    fwrite(p, 1, n, stderr);
}

/* Under gather.mu. */
static void gather_write(void)
{
    if (gather.n) {
        write_all(gather.buf, gather.n);
        gather.n = 0;
    }
}

static void *gather_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gather.mu);
    while (!gather.stop) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        long long ns = t.tv_nsec + (long long)gather.ms * 1000000LL;
        t.tv_sec += (time_t)(ns / 1000000000LL);
        t.tv_nsec = (long)(ns % 1000000000LL);
        int rc = pthread_cond_timedwait(&gather.cv, &gather.mu, &t);
        if (rc == ETIMEDOUT || gather.stop)
            gather_write();
    }
    pthread_mutex_unlock(&gather.mu);
    return NULL;
}

void log_flush(void)
{
    pthread_mutex_lock(&gather.mu);
    int was_on = atomic_exchange(&gather.on, 0);
    gather.stop = 1;
    gather_write();
    pthread_cond_signal(&gather.cv);
    pthread_mutex_unlock(&gather.mu);
    if (was_on)
        pthread_join(gather.thread, NULL);
}

static void flush_at_exit(void)
{
    log_flush();
}

int log_set_flush_ms(int ms)
{
    if (ms <= 0 || atomic_load(&gather.on))
        return 0;
    gather.ms = ms;
    gather.stop = 0;
    gather.n = 0;
    if (pthread_create(&gather.thread, NULL, gather_main, NULL) != 0)
        return -1;
    atomic_store(&gather.on, 1);
    static int registered;
    if (!registered) {
        registered = 1;
        atexit(flush_at_exit);
    }
    return 0;
}

/* One finished line: gathered, or written at once. */
static void put_line(const char *line, size_t n, log_level level)
{
    if (!atomic_load_explicit(&gather.on, memory_order_acquire)) {
        write_all(line, n);
        return;
    }
    pthread_mutex_lock(&gather.mu);
    if (!atomic_load_explicit(&gather.on, memory_order_relaxed)) {
        pthread_mutex_unlock(&gather.mu);
        write_all(line, n);
        return;
    }
    if (gather.n + n > sizeof(gather.buf))
        gather_write();
    memcpy(gather.buf + gather.n, line, n);  /* n <= LINE_MAX_BYTES < GATHER_BYTES */
    gather.n += n;
    if (level != LOG_INFO)
        gather_write();
    pthread_mutex_unlock(&gather.mu);
}

void log_set_format(log_format f)
{
    atomic_store_explicit(&format, (int)f, memory_order_relaxed);
}

log_format log_get_format(void)
{
    return (log_format)atomic_load_explicit(&format, memory_order_relaxed);
}

int json_escape(char *buf, size_t cap, size_t *n, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t at = *n;
    int cut = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        unsigned char c = *p;
        size_t need = 1;
        if (c == '"' || c == '\\')
            need = 2;
        else if (c < 0x20 || c == 0x7f)
            need = 6;
        else if (c >= 0xf0)
            need = 4;  /* a UTF-8 lead byte: room for its whole sequence */
        else if (c >= 0xe0)
            need = 3;
        else if (c >= 0xc0)
            need = 2;
        if (at + need >= cap) {
            cut = 1;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[at++] = '\\';
            buf[at++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(buf + at, "\\u00", 4);
            buf[at + 4] = hex[c >> 4];
            buf[at + 5] = hex[c & 15];
            at += 6;
        } else {
            buf[at++] = (char)c;
        }
    }
    if (at < cap)
        buf[at] = '\0';
    *n = at;
    return cut ? -1 : 0;
}

/* printf-style append at *n, never past cap (the text is cut there). */
static void addf(char *buf, size_t cap, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void addf(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    if (*n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k > 0)
        *n += (size_t)k < cap - *n ? (size_t)k : cap - *n - 1;
}

/* Appends len bytes of s at *n, never past cap (the text is cut there). */
static void put(char *buf, size_t cap, size_t *n, const char *s, size_t len)
{
    if (*n + len >= cap)
        len = *n + 1 < cap ? cap - *n - 1 : 0;
    memcpy(buf + *n, s, len);
    *n += len;
}

#define PUTS(buf, cap, n, lit) put((buf), (cap), (n), (lit), sizeof(lit) - 1)

/* Appends v in decimal, with at least min digits (zero-padded). The
 * request log writes several numbers per line: cheaper than printf. */
static void put_u64(char *buf, size_t cap, size_t *n, unsigned long long v, int min)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v || (int)sizeof(tmp) - i < min);
    put(buf, cap, n, tmp + i, sizeof(tmp) - (size_t)i);
}

/* "2026-01-02T03:04:05.678Z": the part up to the seconds is formatted once
 * per second and thread. */
static void timestamp(char *buf, size_t len)
{
    static _Thread_local time_t last = -1;
    static _Thread_local char head[24];
    uint64_t ns = clock_wall_ns();
    time_t secs = (time_t)(ns / 1000000000ull);
    if (secs != last) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        if (strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            head[0] = '\0';
        last = secs;
    }
    size_t n = 0;
    put(buf, len, &n, head, strlen(head));
    PUTS(buf, len, &n, ".");
    put_u64(buf, len, &n, ns / 1000000ull % 1000, 3);
    PUTS(buf, len, &n, "Z");
    buf[n] = '\0';
}

/* Appends the fields as a JSON object's members, each preceded by a comma
 * when first is 0. A line that is full drops the fields that no longer fit
 * whole (a string is cut instead), so what is written stays valid JSON. */
static void add_fields(char *buf, size_t cap, size_t *n, va_list ap, int first)
{
    for (;;) {
        log_field f = va_arg(ap, log_field);
        if (f.type == LOG_T_END || *n + 128 >= cap)
            return;
        if (f.type == LOG_T_JSON && f.s && *n + strlen(f.s) + 128 >= cap)
            continue;
        if (!first)
            PUTS(buf, cap, n, ",");
        first = 0;
        PUTS(buf, cap, n, "\"");
        json_escape(buf, cap, n, f.key);
        PUTS(buf, cap, n, "\":");
        switch (f.type) {
        case LOG_T_STR:
            PUTS(buf, cap, n, "\"");
            json_escape(buf, cap - 2, n, f.s);
            PUTS(buf, cap, n, "\"");
            break;
        case LOG_T_INT:
            if (f.i < 0)
                PUTS(buf, cap, n, "-");
            put_u64(buf, cap, n, f.i < 0 ? 0ull - (unsigned long long)f.i : (unsigned long long)f.i, 1);
            break;
        case LOG_T_UINT: put_u64(buf, cap, n, f.u, 1); break;
        case LOG_T_BOOL:
            if (f.i)
                PUTS(buf, cap, n, "true");
            else
                PUTS(buf, cap, n, "false");
            break;
        case LOG_T_DBL:
            if (isfinite(f.d))
                addf(buf, cap, n, "%.6g", f.d);
            else
                PUTS(buf, cap, n, "null");
            break;
        case LOG_T_MILLI:
            put_u64(buf, cap, n, f.u / 1000, 1);
            PUTS(buf, cap, n, ".");
            put_u64(buf, cap, n, f.u % 1000, 3);
            break;
        case LOG_T_JSON:
            if (f.s)
                put(buf, cap, n, f.s, strlen(f.s));
            else
                PUTS(buf, cap, n, "null");
            break;
        case LOG_T_END: return;
        }
    }
}

void log_emit(const char *text, log_level level, const char *msg, ...)
{
    /* The end of a line ("}\n" or "\n") always fits: fields are written
     * into all but the last bytes. */
    char line[LINE_MAX_BYTES];
    const size_t cap = sizeof(line) - 4;
    const char *lv = level_names[(unsigned)level < 3 ? level : LOG_ERROR];
    char ts[40];
    timestamp(ts, sizeof(ts));
    size_t n = 0;
    va_list ap;
    va_start(ap, msg);
    if (log_get_format() == LOG_FORMAT_TEXT) {
        if (text) {
            addf(line, cap, &n, "%s %s", ts, text);
        } else {
            addf(line, cap, &n, "%s %s %s", ts, lv, msg);
            size_t before = n;
            addf(line, cap, &n, " ");
            add_fields(line, cap, &n, ap, 1);
            if (n == before + 1)
                n = before;  /* no fields: no trailing space */
        }
    } else {
        PUTS(line, cap, &n, "{\"ts\":\"");
        put(line, cap, &n, ts, strlen(ts));
        PUTS(line, cap, &n, "\",\"level\":\"");
        put(line, cap, &n, lv, strlen(lv));
        PUTS(line, cap, &n, "\",\"msg\":\"");
        json_escape(line, cap - 256, &n, msg);
        PUTS(line, cap, &n, "\"");
        add_fields(line, cap, &n, ap, 0);
        line[n++] = '}';
    }
    va_end(ap);
    line[n++] = '\n';
    put_line(line, n, level);
}
