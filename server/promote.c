/* server/promote.c -- a training job's promotion policy; see promote.h. */
#include "server/promote.h"

#include <string.h>

const char *promote_policy_name(promote_policy p)
{
    switch (p) {
    case PROMOTE_ALWAYS: return "always";
    case PROMOTE_NEVER: return "never";
    case PROMOTE_IF_BETTER: break;
    }
    return "if_better";
}

int promote_policy_parse(const char *s, promote_policy *out)
{
    static const promote_policy all[] = {PROMOTE_IF_BETTER, PROMOTE_ALWAYS, PROMOTE_NEVER};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, promote_policy_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}
