/* api/web.c -- the web page built into the binary and served at GET /.
 * The assembler includes the files of web/ (paths relative to the
 * repository root, where make runs; the Makefile makes this object depend
 * on them), so the binary needs no install directory and the page served
 * is always the page of this build. */
#include <string.h>

#include "api/respond.h"
#include "api/web.h"

#define WEB_FILE(sym, file)                      \
    ".global " sym "\n"                          \
    ".type " sym ", @object\n"                   \
    ".balign 16\n"                               \
    sym ":\n"                                    \
    ".incbin \"" file "\"\n"                     \
    ".global " sym "_end\n"                      \
    ".type " sym "_end, @object\n"               \
    sym "_end:\n"                                \
    ".byte 0\n"

__asm__(".section .rodata\n"
        WEB_FILE("api_web_index_html", "web/index.html")
        WEB_FILE("api_web_app_js", "web/app.js")
        WEB_FILE("api_web_style_css", "web/style.css")
        ".previous\n");

extern const char api_web_index_html[], api_web_index_html_end[];
extern const char api_web_app_js[], api_web_app_js_end[];
extern const char api_web_style_css[], api_web_style_css_end[];

typedef struct {
    const char *path;
    const char *start;
    const char *end;
    const char *ctype;
} web_file;

static const web_file files[] = {
    {"/", api_web_index_html, api_web_index_html_end, "text/html; charset=utf-8"},
    {"/index.html", api_web_index_html, api_web_index_html_end, "text/html; charset=utf-8"},
    {"/app.js", api_web_app_js, api_web_app_js_end, "text/javascript; charset=utf-8"},
    {"/static/app.js", api_web_app_js, api_web_app_js_end, "text/javascript; charset=utf-8"},
    {"/style.css", api_web_style_css, api_web_style_css_end, "text/css; charset=utf-8"},
    {"/static/style.css", api_web_style_css, api_web_style_css_end, "text/css; charset=utf-8"},
};

/* The page loads nothing from elsewhere and runs no inline script or style
 * attribute, so the policy can be this strict: an injected tag does nothing.
 * blob: is for the sample grid, fetched with error handling and shown from
 * an object URL; data: for the empty icon that spares a /favicon.ico 404. */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

int api_web_find(const char *path, const char **body, size_t *len, const char **content_type)
{
    if (!path)
        return -1;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (strcmp(path, files[i].path) != 0)
            continue;
        if (body)
            *body = files[i].start;
        if (len)
            *len = (size_t)(files[i].end - files[i].start);
        if (content_type)
            *content_type = files[i].ctype;
        return 0;
    }
    return -1;
}

/* Serves the file straight from read-only data (no copy), with the headers
 * every response of the daemon carries plus the page's security headers. */
enum MHD_Result api_web_respond(api_request *r, const char *path)
{
    const char *body = NULL, *ctype = NULL;
    size_t len = 0;
    if (api_web_find(path, &body, &len, &ctype) != 0)
        return api_error(r, 404, "not found", "no such path; see /openapi.yaml", NULL);
    int head = strcmp(r->method, "HEAD") == 0;
    if (!head && strcmp(r->method, "GET") != 0) {
        static const char *const allow[] = {"Allow", "GET, HEAD", NULL};
        return api_error(r, 405, "method not allowed", "the web page allows GET, HEAD", allow);
    }
    r->is_head = head;
    static const char *const plain[] = {"X-Content-Type-Options", "nosniff", NULL};
    static const char *const page[] = {"X-Content-Type-Options", "nosniff",
                                       "Content-Security-Policy", csp,
                                       "Referrer-Policy", "no-referrer", NULL};
    return api_respond_static(r, 200, ctype, body, len,
                              strncmp(ctype, "text/html", 9) == 0 ? page : plain);
}
