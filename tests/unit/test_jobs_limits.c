/* jobs_submit when the process may start no more threads: the kernel's
 * per-user thread limit (RLIMIT_NPROC) makes pthread_create fail for real.
 * The submission must come back as JOBS_ERROR with the thread failure in
 * err (a resource failure, which the API answers 503), not JOBS_INVALID (a
 * setting out of range, 422), and the manager must stay usable. Root is
 * exempt from the limit, so a child process drops to an otherwise unused
 * user id first; without root the test is skipped. */
#include "tests/unit/test.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/jobs.h"
#include "server/modelstore.h"

#define SPARE_UID 54329     /* no process of the machine runs as this user */

/* In the child: 0 when jobs_submit reported the thread failure as it should,
 * else a code saying what went wrong. */
static int child(void)
{
    if (setgid(SPARE_UID) != 0 || setuid(SPARE_UID) != 0)
        return 10;
    struct rlimit one = {1, 1};  /* this process is the user's only task */
    if (setrlimit(RLIMIT_NPROC, &one) != 0)
        return 11;
    modelstore ms;
    modelstore_init(&ms);
    jobs *j = jobs_create(&ms, "", "", 1, 4);
    if (!j)
        return 12;
    train_config cfg;
    train_config_default(&cfg);
    char err[512] = "";
    int id = -1;
    int rc = jobs_submit(j, &cfg, "api", &id, err, sizeof err);
    printf("# jobs_submit under RLIMIT_NPROC=1: rc %d, err \"%s\"\n", rc, err);
    fflush(stdout);
    if (rc != JOBS_ERROR)
        return 13;
    if (!strstr(err, "cannot start a training thread") || strstr(err, "Success"))
        return 14;
    /* Nothing was queued: the history is empty and a later try is not busy. */
    job_info list[4];
    if (jobs_list(j, list, 4) != 0)
        return 15;
    rc = jobs_submit(j, &cfg, "api", &id, err, sizeof err);
    jobs_destroy(j);
    return rc == JOBS_ERROR ? 0 : 16;
}

int main(void)
{
    if (geteuid() != 0) {
        TEST_SKIP("jobs_thread_start_failure_is_a_resource_error",
                  "needs root to run a child under another user's thread limit");
        TEST_EXIT();
    }
    TEST_BEGIN("jobs_thread_start_failure_is_a_resource_error");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child());
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait failed");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child ended with status 0x%x (10-12: setup, 13: not JOBS_ERROR, 14: message, "
          "15: a job was kept, 16: second try)", status);
    TEST_END();
    TEST_EXIT();
}
