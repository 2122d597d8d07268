/* model/atomicfile.c -- write, fsync, rename, fsync the directory; see
 * atomicfile.h. */
#include "model/atomicfile.h"
#include "model/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Temporary files are named TARGET.tmp.PID.N (N a counter). This file
 * alone knows it: atomic_remove_stale_temps and atomic_is_temp_name rely on
 * it (tests/integration/test_source_rules.sh keeps it so). */
#define TMP_INFIX ".tmp."

static int write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int atomic_sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int atomic_write(const char *path, const atomic_part *parts, int nparts, char *err, size_t errlen)
{
    /* Distinct temporary names for concurrent writes within one process. */
    static atomic_uint counter;
    char tmp[PATH_MAX];
    int fd = -1, ret = -1, have_tmp = 0;

    if (!path || !*path) {
        err_set(err, errlen, "no path given");
        return -1;
    }
    /* A name of our own: pid and a counter. A file left under that name by
     * a killed process with the same pid (a container's pid 1 after a
     * restart) only makes us try the next number. */
    for (int attempt = 0; attempt < 1000; attempt++) {
        int k = snprintf(tmp, sizeof tmp, "%s" TMP_INFIX "%ld.%u", path, (long)getpid(),
                         atomic_fetch_add(&counter, 1u));
        if (k < 0 || (size_t)k >= sizeof tmp) {
            err_set(err, errlen, "%s: path too long", path);
            return -1;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        err_set(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        goto cleanup;
    }
    have_tmp = 1;
    for (int i = 0; i < nparts; i++) {
        if (write_all(fd, parts[i].data, parts[i].len) != 0) {
            err_set(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
            goto cleanup;
        }
    }
    if (fsync(fd) != 0) {
        err_set(err, errlen, "%s: fsync failed: %s", tmp, strerror(errno));
        goto cleanup;
    }
    int c = close(fd);
    fd = -1;
    if (c != 0) {
        err_set(err, errlen, "%s: close failed: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        err_set(err, errlen, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        goto cleanup;
    }
    have_tmp = 0;
    if (atomic_sync_parent(path) != 0) {
        /* The file is complete and in place; only its durability across a
         * power loss is in doubt, which the caller should hear about. */
        err_set(err, errlen, "%s: written, but fsync of its directory failed: %s", path,
                strerror(errno));
        goto cleanup;
    }
    ret = 0;
cleanup:
    if (fd >= 0)
        close(fd);
    if (have_tmp)
        unlink(tmp);
    return ret;
}

/* The PID of a temporary file's name NAME.tmp.PID.N (name: NAME, or ""
 * for any), or -1 when it is not one. */
static long temp_pid(const char *file, const char *name)
{
    const char *t;
    if (name && *name) {
        size_t n = strlen(name);
        if (strncmp(file, name, n) != 0 || strncmp(file + n, TMP_INFIX, sizeof TMP_INFIX - 1) != 0)
            return -1;
        t = file + n;
    } else {
        t = NULL;
        for (const char *s = strstr(file, TMP_INFIX); s; s = strstr(s + 1, TMP_INFIX))
            t = s;  /* the last one */
        if (!t || t == file)
            return -1;
    }
    /* The rest must be PID.N, both decimal. */
    const char *p = t + sizeof TMP_INFIX - 1;
    char *end = NULL;
    errno = 0;
    long pid = strtol(p, &end, 10);
    if (errno || end == p || *end != '.' || pid <= 0)
        return -1;
    const char *q = end + 1;
    if (!*q || strspn(q, "0123456789") != strlen(q))
        return -1;
    return pid;
}

int atomic_remove_stale_temps(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = temp_pid(e->d_name, name);
        if (pid < 0)
            continue;
        /* kill(pid, 0) sees this PID namespace only: a process of another
         * container that shares the directory looks gone. */
        if (pid != (long)getpid() && !(kill((pid_t)pid, 0) != 0 && errno == ESRCH))
            continue;  /* its process may still be writing it */
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        if (unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int atomic_is_temp_name(const char *file)
{
    return temp_pid(file, NULL) > 0;
}
