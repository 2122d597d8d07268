/* server/promote.h -- a training job's promotion policy: whether its
 * model replaces the served one (server/lifecycle.h applies it). */
#ifndef MNISTD_PROMOTE_H
#define MNISTD_PROMOTE_H

typedef enum {
    PROMOTE_IF_BETTER = 0,  /* when its test accuracy is at least the active model's */
    PROMOTE_ALWAYS,
    PROMOTE_NEVER,          /* kept as a version only */
} promote_policy;

/* "if_better", "always" or "never". */
const char *promote_policy_name(promote_policy p);
/* The policy of one of those names: 0, or -1 for any other string (or NULL). */
int promote_policy_parse(const char *s, promote_policy *out);

#endif
