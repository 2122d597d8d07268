/* cmd/flags.h -- the command line's flag parser, driven by a table.
 *
 * A command lists its flags in an array of flag_def, the way server/config.c
 * lists the daemon's settings: the name ("--epochs"), another spelling, the kind
 * of value, where the value goes and an optional range check. flags_parse
 * reads "--name value" and "--name=value" in order and stops at the first
 * problem, saying which argument and why, so that each command words its
 * own message. (The daemon's settings, which also come from environment
 * variables, keep their own table in config.c.) */
#ifndef MNISTD_FLAGS_H
#define MNISTD_FLAGS_H

typedef enum {
    FLAG_SWITCH,    /* no value: *(int *)dst = 1; "--name=x" is unknown */
    FLAG_STRING,    /* *(const char **)dst = the value */
    FLAG_LONG,      /* *(long *)dst: a whole decimal number */
    FLAG_DOUBLE,    /* *(double *)dst: a finite number */
} flag_type;

typedef struct {
    const char *name;       /* with the dashes: "--epochs" */
    const char *alias;      /* another spelling ("--lr"), or NULL */
    flag_type type;
    void *dst;
    int nonempty;           /* FLAG_STRING: an empty value counts as missing */
    /* FLAG_LONG, FLAG_DOUBLE: NULL, or 0 when v is in range (id is passed
     * along, e.g. the train_field the flag sets). */
    int (*check)(int id, double v);
    int id;
} flag_def;

typedef enum {
    FLAGS_OK = 0,   /* every flag read; *at: argc, or the first positional argument */
    FLAGS_HELP,     /* --help or -h */
    FLAGS_UNKNOWN,  /* argv[*at] is none of the table's flags */
    FLAGS_MISSING,  /* argv[*at] is the last argument but needs a value */
    FLAGS_BAD,      /* argv[*at]'s value is malformed or out of range */
} flags_status;

/* Parses argv[1..argc) against defs[0..n). With positional, an argument that
 * does not start with '-' (or is "-") ends the flags; without, it is
 * FLAGS_UNKNOWN. *at is the argument concerned; *which (may be NULL) the
 * index in defs of the flag concerned (-1 for FLAGS_UNKNOWN and FLAGS_HELP). */
flags_status flags_parse(int argc, char **argv, const flag_def *defs, int n, int positional,
                         int *at, int *which);

#endif
