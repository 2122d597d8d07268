/* api/embed.c -- openapi.yaml built into the binary, served at
 * GET /openapi.yaml, so the spec served is always the spec of this build.
 * The assembler includes the file (paths are relative to the repository
 * root, where make runs); the Makefile makes this object depend on it. */
#include "api/api.h"

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
