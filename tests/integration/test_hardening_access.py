#!/usr/bin/env python3
"""Access control against the real daemon.

With a token configured (--token-file, or MNISTD_TOKEN), POST /train and
DELETE /train/{id} answer 401 with `WWW-Authenticate: Bearer` without the
header, with a wrong token, a token of another length, or another scheme,
and 202 with the right one; read-only endpoints and predictions stay open.
The token appears nowhere: not in the log (startup settings, access lines,
errors), not in /metrics, not in any answer. Without a token everything is
open. A token file that is missing, empty, or writable by others stops the
daemon at startup with exit status 2 and a message that names the file but
not the token."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import hardening as H  # noqa: E402

TOKEN = "k7Qz-0d9f8e7c6b5a4_ZyXw.Vu~T+s/r=q"
BAD = ["", "Bearer", "Bearer wrong", "Bearer " + TOKEN[:-1], "Bearer " + TOKEN + "x",
       "Bearer " + TOKEN[:-1] + "R", "Basic " + TOKEN, "Token " + TOKEN, TOKEN]
TRAIN = json.dumps({"epochs": 100, "limit": 256, "validation_split": 0})


def train_post(d, auth):
    h = {"Content-Type": "application/json"}
    if auth is not None:
        h["Authorization"] = auth
    return d.request("POST", "/train", TRAIN, h)


def check_protected(d, tag, answers):
    """Every bad credential answers 401 with the challenge; the right one
    202. Returns the id of the job started."""
    bad = []
    for a in [None] + BAD:
        st, h, b = train_post(d, a)
        answers.append(b)
        if st != 401 or not h.get("www-authenticate", "").startswith("Bearer"):
            bad.append("%r: %d %s" % (a, st, h.get("www-authenticate")))
        elif json.loads(b).get("status") != 401:
            bad.append("%r: body %s" % (a, b[:100]))
    H.report("test_hardening_access_%s_post_train_401" % tag, not bad, "; ".join(bad))
    st, h, b = train_post(d, "Bearer " + TOKEN)
    answers.append(b)
    H.report("test_hardening_access_%s_post_train_202" % tag, st == 202, "%d %s" % (st, b[:200]))
    job = json.loads(b).get("id") if st == 202 else 1
    bad = []
    for a in [None, "Bearer wrong", "Basic " + TOKEN]:
        st, h, b = d.request("DELETE", "/train/%d" % job, headers={"Authorization": a} if a else {})
        answers.append(b)
        if st != 401 or not h.get("www-authenticate", "").startswith("Bearer"):
            bad.append("%r: %d" % (a, st))
    H.report("test_hardening_access_%s_delete_401" % tag, not bad, "; ".join(bad))
    # Read-only endpoints and predictions need nothing.
    bad = []
    for path in ["/train", "/train/%d" % job, "/model", "/healthz", "/readyz", "/metrics", "/openapi.yaml", "/"]:
        st, _, b = d.request("GET", path)
        answers.append(b)
        if st != 200:
            bad.append("%s %d" % (path, st))
    st, _, b = d.predict(H.png_digit())
    if st != 200:
        bad.append("POST /predict %d" % st)
    H.report("test_hardening_access_%s_reads_open" % tag, not bad, "; ".join(bad))
    st, _, b = d.request("DELETE", "/train/%d" % job, headers={"Authorization": "Bearer " + TOKEN})
    answers.append(b)
    H.report("test_hardening_access_%s_delete_202" % tag, st == 202, "%d %s" % (st, b[:200]))
    return job


def no_token_anywhere(d, tag, answers):
    _, _, m = d.request("GET", "/metrics")
    answers.append(m)
    d.stop()
    where = []
    if TOKEN in d.text():
        where.append("log")
    if TOKEN.encode() in m:
        where.append("/metrics")
    if any(TOKEN.encode() in a for a in answers):
        where.append("an answer")
    H.report("test_hardening_access_%s_token_never_shown" % tag, not where, "the token is in: %s" % where)
    H.report("test_hardening_access_%s_logged_mode" % tag, "API token configured" in d.text(),
             "the startup log does not say a token protects the mutating endpoints")


def startup_refused(work, name, path, content, mode):
    if content is not None:
        with open(path, "w") as f:
            f.write(content)
        os.chmod(path, mode)
    r = subprocess.run([H.BIN, "serve", "--port", "0", "--token-file", path, "--model", "/nonexistent"],
                       capture_output=True, text=True, timeout=30)
    ok = r.returncode == 2 and path in r.stderr and TOKEN not in r.stderr + r.stdout
    H.report("test_hardening_access_refuse_%s" % name, ok, "exit %d: %s" % (r.returncode, r.stderr[:300]))


def main():
    if not H.DATA:
        H.skip("test_hardening_access", "MNISTD_DATA is not set (POST /train needs the data)")
        return
    work = H.workdir()
    try:
        model = H.model_copy(work)
        if not model:
            H.skip("test_hardening_access", "no shipped model")
            return
        tf = os.path.join(work, "token")
        with open(tf, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tf, 0o600)
        before = open(model, "rb").read()

        answers = []
        d = H.Daemon("file", ["--model", model, "--data", H.DATA, "--token-file", tf], work)
        check_protected(d, "file", answers)
        no_token_anywhere(d, "file", answers)

        env = {"MNISTD_TOKEN": TOKEN}
        answers = []
        d = H.Daemon("env", ["--model", model, "--data", H.DATA], work, env=env)
        check_protected(d, "env", answers)
        no_token_anywhere(d, "env", answers)
        H.report("test_hardening_access_model_untouched", open(model, "rb").read() == before,
                 "a cancelled job changed the model file")

        d = H.Daemon("open", ["--model", model, "--data", H.DATA], work, env={"MNISTD_TOKEN": ""})
        st, _, b = train_post(d, None)
        job = json.loads(b).get("id", 1) if st == 202 else 1
        st2, _, _ = d.request("DELETE", "/train/%d" % job)
        H.report("test_hardening_access_open_without_token", st == 202 and st2 == 202,
                 "POST /train %d, DELETE %d" % (st, st2))
        rc = d.stop()
        H.report("test_hardening_access_open_exit_0", rc == 0, "exit %s" % rc)

        startup_refused(work, "missing_file", os.path.join(work, "absent"), None, 0)
        startup_refused(work, "empty_file", os.path.join(work, "empty"), "\n", 0o600)
        startup_refused(work, "short_token", os.path.join(work, "short"), "abc\n", 0o600)
        startup_refused(work, "group_writable", os.path.join(work, "gw"), TOKEN, 0o660)
    finally:
        H.cleanup(work)
    H.finish()


if __name__ == "__main__":
    main()
