/* api/embed.c -- openapi.yaml built into the binary, served at
 * GET /openapi.yaml, so the spec served is always the spec of this build.
 * The assembler includes the file (paths are relative to the repository
 * root, where make runs); the Makefile makes this object depend on it. */
#include "api/api.h"
#include "api/respond.h"

__asm__(".section .rodata\n"
        ".global api_openapi_yaml\n"
        ".type api_openapi_yaml, @object\n"
        ".balign 16\n"
        "api_openapi_yaml:\n"
        ".incbin \"openapi.yaml\"\n"
        ".global api_openapi_yaml_end\n"
        ".type api_openapi_yaml_end, @object\n"
        "api_openapi_yaml_end:\n"
        ".byte 0\n"
        ".previous\n");

enum MHD_Result api_get_openapi(api_request *r)
{
    /* The spec lives in the binary's read-only data: no copy needed. */
    size_t len = (size_t)(api_openapi_yaml_end - api_openapi_yaml);
    return api_respond_static(r, 200, "application/yaml", api_openapi_yaml, len, NULL);
}
