#!/usr/bin/env python3
"""Graceful shutdown on SIGTERM, against the real daemon.

1. In-flight predictions: 12 clients post predictions in a loop (8 with a new
   connection per request, 4 on keep-alive connections) while the daemon
   gets SIGTERM. It exits 0, and no request it accepted is lost: every
   answer a client got is 200 or 503 "shutting down"; every request the
   daemon logged was answered to its client (the log has no 499, and its
   count of /predict answers equals what the clients received). A connection
   refused, or one reset before any answer that the daemon never logged
   (still in the kernel's listen queue when the listener closed, or a
   keep-alive request that came after the drain), is fine.
2. A running training job (many epochs) and SIGTERM with the default
   --shutdown-timeout-s 0: the daemon cancels it and exits 0 within a few
   seconds; the model file keeps its bytes and no temporary file is left.
3. The grace: with --shutdown-timeout-s 60 (x SLOW: ThreadSanitizer's
   slowdown) a short job finishes during the
   shutdown and its model is saved (complete, loadable), while the daemon
   answers /readyz 503 and predictions 503 "shutting down" on connections
   opened before (each answer with `Connection: close`); with --shutdown-timeout-s 1 a long job is cancelled after
   that second and the model is untouched.
"""
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import http.client

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import hardening as H  # noqa: E402

PNG = H.png_digit()


class Tally:
    def __init__(self):
        self.mu = threading.Lock()
        self.counts = {}
        self.other = []

    def add(self, k, detail=None):
        with self.mu:
            self.counts[k] = self.counts.get(k, 0) + 1
            if k == "other" and len(self.other) < 10:
                self.other.append(detail)


def classify(status, body):
    if status == 200:
        return "ok"
    if status == 503 and b"shutting down" in body:
        return "shutting_down"
    return "other"


def new_conn_client(port, tally, stop):
    """A new connection per request until the daemon refuses connections."""
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        except (ConnectionRefusedError, ConnectionResetError):
            tally.add("refused")  # the listener was closed (or closed during the handshake)
            return
        except OSError as e:
            tally.add("other", "connect: %s" % e)
            return
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.sock = s
        try:
            c.request("POST", "/predict", body=PNG, headers={"Content-Type": "image/png", "Connection": "close"})
        except OSError:
            tally.add("unsent")
            c.close()
            continue
        try:
            r = c.getresponse()
            body = r.read()
            k = classify(r.status, body)
            tally.add(k, "status %d %s" % (r.status, body[:80]))
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            tally.add("no_answer")  # judged against the daemon's log below
        except OSError as e:
            tally.add("other", "read: %s" % e)
        c.close()


def keepalive_client(port, tally, stop):
    """Requests on one connection, reconnecting when the daemon closes it."""
    c = None
    while not stop.is_set():
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                c.connect()
            except (ConnectionRefusedError, ConnectionResetError):
                tally.add("refused")
                return
        try:
            c.request("POST", "/predict", body=PNG, headers={"Content-Type": "image/png"})
        except OSError:
            tally.add("unsent")
            c.close()
            c = None
            continue
        try:
            r = c.getresponse()
            body = r.read()
            tally.add(classify(r.status, body), "status %d %s" % (r.status, body[:80]))
            if r.will_close:
                c.close()
                c = None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            tally.add("no_answer")
            c.close()
            c = None
        except OSError as e:
            tally.add("other", "read: %s" % e)
            c.close()
            c = None
    if c:
        c.close()


def test_inflight(work, model):
    d = H.Daemon("inflight", ["--model", model], work)
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=new_conn_client, args=(d.port, tally, stop)) for _ in range(8)]
    threads += [threading.Thread(target=keepalive_client, args=(d.port, tally, stop)) for _ in range(4)]
    for t in threads:
        t.start()
    # Traffic is flowing before the signal.
    H.wait_until(30, lambda: tally.counts.get("ok", 0) >= 300)
    t_sig = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    exit_s = time.monotonic() - t_sig
    # The clients notice the daemon is gone (refused) and end; stop the rest.
    H.wait_until(10, lambda: not any(t.is_alive() for t in threads[:8]))
    stop.set()
    for t in threads:
        t.join(15)
    d.stop()
    c = tally.counts
    print("  clients: %s; exit after %.2f s" % (c, exit_s), flush=True)
    H.report("test_hardening_shutdown_exit_0", rc == 0 and exit_s < 10, "exit %s after %.1f s" % (rc, exit_s))
    H.report("test_hardening_shutdown_answers_ok", c.get("other", 0) == 0,
             "unexpected answers: %s" % tally.other)
    log = d.text()
    logged = len(re.findall(r'"path":"/predict","status":(?:200|503)', log))
    lost = len(re.findall(r'"path":"/predict","status":499', log))
    answered = c.get("ok", 0) + c.get("shutting_down", 0)
    H.report("test_hardening_shutdown_no_accepted_request_lost", lost == 0 and logged == answered,
             "daemon logged %d answers and %d dropped requests (499); clients received %d" %
             (logged, lost, answered))
    H.report("test_hardening_shutdown_listener_closed", c.get("refused", 0) >= 1,
             "no client saw the listener closed: %s" % c)


def start_job(d, epochs, limit):
    st, _, b = d.request("POST", "/train", json.dumps({"epochs": epochs, "limit": limit,
                                                        "validation_split": 0, "promote": "always"}),
                         {"Content-Type": "application/json"})
    if st != 202:
        raise RuntimeError("POST /train: %d %s" % (st, b[:200]))
    return json.loads(b)["id"]


def job_running(d, job):
    def running():
        _, _, b = d.request("GET", "/train/%d" % job)
        o = json.loads(b)
        return o["status"] == "running" and o["progress"]["batch"] + (o["progress"]["epoch"] - 1) > 0
    return H.wait_until(60, running)


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def temps(work):
    return [f for f in os.listdir(work) if ".safetensors.tmp." in f]


def test_training_cancelled(work, model, grace, tag):
    before = md5(model)
    d = H.Daemon(tag, ["--model", model, "--data", H.DATA, "--shutdown-timeout-s", str(grace)], work)
    job = start_job(d, 100, 2048)
    ok = job_running(d, job)
    t0 = time.monotonic()
    rc = d.stop(signal.SIGTERM, timeout=60)
    secs = time.monotonic() - t0
    print("  %s: exit %s after %.2f s" % (tag, rc, secs), flush=True)
    H.report("test_hardening_shutdown_%s_exit_0" % tag, ok and rc == 0 and grace <= secs + 0.1 and secs < grace + 5,
             "job running %s, exit %s after %.2f s (grace %d s)" % (ok, rc, secs, grace))
    H.report("test_hardening_shutdown_%s_model_untouched" % tag, md5(model) == before and not temps(work),
             "model changed (%s) or temporary files left %s" % (md5(model) != before, temps(work)))
    H.report("test_hardening_shutdown_%s_logged" % tag, "cancelling the training job" in d.text(),
             "the log does not say the job was cancelled")


def test_training_grace(work, model):
    before = md5(model)
    # a grace the job fits in; a passing run waits for the job, not for it
    d = H.Daemon("grace", ["--model", model, "--data", H.DATA, "--shutdown-timeout-s", str(60 * H.SLOW)], work)
    keep = d.conn()      # for /readyz
    keep2 = d.conn()     # for a prediction, idle until then
    keep.request("GET", "/readyz")
    r = keep.getresponse()
    r.read()
    ready_before = r.status
    keep2.connect()
    job = start_job(d, 3, 2048)
    job_running(d, job)
    d.proc.send_signal(signal.SIGTERM)
    closes = []

    def not_ready():
        keep.request("GET", "/readyz")
        rr = keep.getresponse()
        rr.read()
        if rr.status == 503:
            closes.append(rr.getheader("Connection"))
        return rr.status == 503
    nr = H.wait_until(10, not_ready)
    keep.close()
    keep2.request("POST", "/predict", body=PNG, headers={"Content-Type": "image/png"})
    rp = keep2.getresponse()
    pb = rp.read()
    closes.append(rp.getheader("Connection"))
    keep2.close()
    H.report("test_hardening_shutdown_grace_not_ready", ready_before == 200 and nr,
             "/readyz before %d, 503 during the shutdown: %s" % (ready_before, nr))
    H.report("test_hardening_shutdown_grace_predict_503", rp.status == 503 and b"shutting down" in pb,
             "POST /predict during the shutdown: %d %s" % (rp.status, pb[:100]))
    H.report("test_hardening_shutdown_connection_close", closes == ["close", "close"],
             "Connection headers of the answers during the shutdown: %s" % closes)
    try:
        rc = d.proc.wait(90 * H.SLOW)
    except subprocess.TimeoutExpired:
        rc = None
    d.stop()
    after = md5(model)
    chk = subprocess.run([os.path.join(H.ROOT, H.BUILD, "tests", "tools", "ckpt_tool"), "show", model],
                         capture_output=True, text=True)
    H.report("test_hardening_shutdown_grace_job_saved", rc == 0 and after != before and chk.returncode == 0
             and not temps(work), "exit %s, model changed %s, loadable %s, temporary files %s" %
             (rc, after != before, chk.returncode == 0, temps(work)))


def main():
    work = H.workdir()
    try:
        model = H.model_copy(work)
        if not model:
            H.skip("test_hardening_shutdown", "no shipped model")
            return
        test_inflight(work, model)
        if not H.DATA:
            H.skip("test_hardening_shutdown_training", "MNISTD_DATA is not set")
        else:
            test_training_cancelled(work, model, 0, "cancel")
            test_training_cancelled(work, model, 1, "grace_over")
            test_training_grace(work, model)
    finally:
        H.cleanup(work)
    H.finish()


if __name__ == "__main__":
    main()
