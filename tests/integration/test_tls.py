#!/usr/bin/env python3
"""HTTPS and mutual TLS against the real daemon, with a CA, server and
client certificates made at test time by tests/tools/mkcerts.sh (openssl).

- startup: a missing, unreadable, mismatched, expired or non-PEM file stops
  the daemon with an error naming the file, and the key never reaches the
  log;
- curl --cacert gets 200; curl trusting another CA, and a plain-HTTP client,
  are refused;
- mutual TLS (--tls-client-ca) guards the mutating endpoints: no client
  certificate, one from another CA, or one not made for client use answer
  403; the right one passes to the bearer-token check (401 without it);
  reading endpoints need no client certificate;
- SIGHUP with a new certificate: new connections get it while a client
  predicting in a loop (new and kept-alive connections) sees no failure; a
  SIGHUP with a broken pair keeps the old certificate and logs why;
- a real Prometheus scrapes /metrics over HTTPS (tls_config with ca_file);
- a garbage handshake, plain HTTP on the TLS port, a slow-loris inside the
  handshake and a TLS 1.2 renegotiation each leave the daemon serving, and
  each connection is closed within --connection-timeout; failed handshakes
  are counted (mnistd_tls_handshake_failures_total), not each logged.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import hardening as H  # noqa: E402

PNG = H.png_digit()
TIMEOUT = 2            # --connection-timeout of the abuse tests, seconds
MARGIN = 1.5           # libmicrohttpd looks at its timeouts about once a second
TOKEN = "tls-test-token-0123456789"


def sh(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def curl(pki, port, path, *extra, scheme="https", cacert="ca.pem"):
    """(curl exit status, HTTP status or 0, body)."""
    args = ["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"]
    if cacert:
        args += ["--cacert", os.path.join(pki, cacert)]
    r = sh(args + list(extra) + ["%s://127.0.0.1:%d%s" % (scheme, port, path)])
    body, _, code = r.stdout.rpartition("\n")
    return r.returncode, int(code) if code.isdigit() else 0, body


def served_cert_der(port, pki):
    """The DER certificate a new connection gets (verified against ca.pem)."""
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.getpeercert(binary_form=True)


def file_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def tls_ctx(pki, client=None):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    if client:
        ctx.load_cert_chain(os.path.join(pki, client + ".pem"), os.path.join(pki, client + ".key"))
    return ctx


def https_predict(port, ctx, conn=None):
    """One prediction; on conn (kept alive) or a new connection. Returns
    (status, conn or None)."""
    import http.client
    c = conn or http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("POST", "/predict", body=PNG, headers={"Content-Type": "image/png"})
    r = c.getresponse()
    r.read()
    return r.status, c


def still_serves(port, pki):
    rc, code, _ = curl(pki, port, "/readyz")
    return rc == 0 and code == 200


# ---- startup checks ----------------------------------------------------------------

def test_startup(work, pki, model):
    p = lambda n: os.path.join(pki, n)  # noqa: E731
    with open(p("server.key")) as f:
        key_line = [ln for ln in f.read().splitlines() if ln and not ln.startswith("-----")][0]
    notpem = os.path.join(work, "notpem.pem")
    with open(notpem, "w") as f:
        f.write("hello\n")
    cases = [
        ("test_tls_startup_missing_cert", [p("nope.pem"), p("server.key")], "tls-cert '%s': cannot open: No such file"
         % p("nope.pem")),
        ("test_tls_startup_missing_key", [p("server.pem"), p("nope.key")], "tls-key '%s': cannot open: No such file"
         % p("nope.key")),
        ("test_tls_startup_cert_not_a_file", [pki, p("server.key")], "tls-cert '%s': not a regular file" % pki),
        ("test_tls_startup_not_pem", [notpem, p("server.key")], "tls-cert '%s': no PEM certificate" % notpem),
        ("test_tls_startup_key_not_pem", [p("server.pem"), notpem], "tls-key '%s': not an unencrypted PEM" % notpem),
        ("test_tls_startup_mismatch", [p("server.pem"), p("server2.key")],
         "tls-key '%s' does not belong to the certificate in tls-cert '%s'" % (p("server2.key"), p("server.pem"))),
        ("test_tls_startup_expired", [p("expired.pem"), p("expired.key")],
         "tls-cert '%s': the certificate expired on 2020-01-02T00:00:00Z" % p("expired.pem")),
        ("test_tls_startup_client_ca_missing", [p("server.pem"), p("server.key"), p("nope-ca.pem")],
         "tls-client-ca '%s': cannot open" % p("nope-ca.pem")),
    ]
    for name, files, want in cases:
        args = [H.BIN, "serve", "--port", "0", "--model", model, "--tls-cert", files[0], "--tls-key", files[1]]
        if len(files) > 2:
            args += ["--tls-client-ca", files[2]]
        r = sh(args, timeout=30)
        H.report(name, r.returncode != 0 and want in r.stdout and key_line not in r.stdout,
                 "rc=%d, want %r in: %s" % (r.returncode, want, r.stdout[-600:]))
    # unreadable: the daemon's user may not read the key (as root no mode
    # stops a read, so the daemon runs as nobody)
    if os.geteuid() == 0 and shutil.which("setpriv"):
        d = os.path.join(work, "unreadable")
        os.makedirs(d)
        for n in ("server.pem", "server.key"):
            shutil.copy(p(n), d)
        os.chmod(d, 0o755)
        os.chmod(os.path.join(d, "server.pem"), 0o644)
        os.chmod(os.path.join(d, "server.key"), 0o600)
        m, binary = os.path.join(d, "model.safetensors"), os.path.join(d, "mnistd")
        shutil.copy(model, m)
        shutil.copy(H.BIN, binary)
        os.chmod(m, 0o644)
        os.chmod(binary, 0o755)
        os.chmod(work, 0o755)
        r = sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", binary, "serve", "--port", "0",
                "--model", m, "--tls-cert", os.path.join(d, "server.pem"), "--tls-key",
                os.path.join(d, "server.key")], timeout=30)
        want = "tls-key '%s': cannot open: Permission denied" % os.path.join(d, "server.key")
        if "Permission denied" in r.stdout and "safetensors" in r.stdout and "tls-key" not in r.stdout:
            H.skip("test_tls_startup_unreadable_key", "user nobody cannot reach the binary or the model")
        else:
            H.report("test_tls_startup_unreadable_key", r.returncode != 0 and want in r.stdout,
                     "rc=%d, want %r in: %s" % (r.returncode, want, r.stdout[-600:]))
    else:
        H.skip("test_tls_startup_unreadable_key", "needs root and setpriv to run the daemon as another user")
    r = sh([H.BIN, "serve", "--port", "0", "--tls-cert", p("server.pem")], timeout=30)
    H.report("test_tls_startup_cert_without_key", r.returncode == 2 and "give both" in r.stdout,
             "rc=%d: %s" % (r.returncode, r.stdout[-300:]))


# ---- HTTPS and mutual TLS --------------------------------------------------------------

def test_https_and_mtls(work, pki, model):
    token_file = os.path.join(work, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    d = H.Daemon("mtls", ["--model", model, "--tls-cert", os.path.join(pki, "server.pem"), "--tls-key",
                          os.path.join(pki, "server.key"), "--tls-client-ca", os.path.join(pki, "ca.pem"),
                          "--token-file", token_file], work)
    port = d.port
    H.report("test_tls_startup_line_https", '"msg":"listening on https://127.0.0.1:%d"' % port in d.text(),
             d.text()[-400:])
    rc, code, body = curl(pki, port, "/healthz")
    H.report("test_tls_curl_cacert_200", rc == 0 and code == 200 and '"ok"' in body, "rc=%d code=%d" % (rc, code))
    png = os.path.join(work, "d.png")
    with open(png, "wb") as f:
        f.write(PNG)
    rc, code, body = curl(pki, port, "/predict", "-H", "Content-Type: image/png", "--data-binary", "@" + png)
    H.report("test_tls_curl_predict_200", rc == 0 and code == 200 and '"digit":' in body,
             "rc=%d code=%d %s" % (rc, code, body[:200]))
    rc, code, _ = curl(pki, port, "/healthz", cacert="other-ca.pem")
    H.report("test_tls_wrong_ca_refused", rc == 60 and code == 0, "curl rc=%d code=%d (want 60, no answer)" % (rc, code))
    rc, code, _ = curl(pki, port, "/healthz", scheme="http", cacert=None)
    H.report("test_tls_plain_http_client_refused", rc != 0 and code == 0, "curl rc=%d code=%d" % (rc, code))

    # mutual TLS on the mutating endpoints, then the token
    auth = ["-H", "Authorization: Bearer " + TOKEN]
    cert = lambda n: ["--cert", os.path.join(pki, n + ".pem"), "--key", os.path.join(pki, n + ".key")]  # noqa: E731
    for name, extra, want, detail in [
        ("test_tls_mtls_no_client_cert_403", auth, 403, "no client certificate"),
        ("test_tls_mtls_other_ca_cert_403", auth + cert("other-client"), 403, "issuer is unknown"),
        ("test_tls_mtls_server_cert_as_client_403", auth + cert("server"), 403, "intended purpose"),
        ("test_tls_mtls_activate_no_cert_403", auth, 403, "client certificate"),
    ]:
        path = "/models/0123456789abcdef/activate" if "activate" in name else "/train/999"
        method = "POST" if "activate" in name else "DELETE"
        rc, code, body = curl(pki, port, path, "-X", method, *extra)
        ok = code == want and detail in body
        try:
            ok = ok and json.loads(body)["error"] == "client certificate required"
        except ValueError:
            ok = False
        H.report(name, ok, "code=%d body=%s" % (code, body[:300]))
    rc, code, body = curl(pki, port, "/train/999", "-X", "DELETE", *cert("client"))
    H.report("test_tls_mtls_token_still_checked_401", code == 401 and '"unauthorized"' in body,
             "code=%d %s" % (code, body[:200]))
    rc, code, body = curl(pki, port, "/train/999", "-X", "DELETE", "-H", "Authorization: Bearer wrong-token-0123456789",
                          *cert("client"))
    H.report("test_tls_mtls_wrong_token_401", code == 401, "code=%d %s" % (code, body[:200]))
    rc, code, body = curl(pki, port, "/train/999", "-X", "DELETE", *(auth + cert("client")))
    H.report("test_tls_mtls_cert_and_token_pass", code == 404 and "no such training job" in body,
             "code=%d %s" % (code, body[:200]))
    rc, code, _ = curl(pki, port, "/metrics")
    H.report("test_tls_mtls_reading_needs_no_client_cert", code == 200, "GET /metrics without a client cert: %d" % code)
    log = d.text()
    H.report("test_tls_token_and_key_not_logged", TOKEN not in log and "PRIVATE KEY" not in log, "found in the log")
    H.report("test_tls_mtls_stop", d.stop() == 0, "exit status")


# ---- SIGHUP rotation --------------------------------------------------------------------

def test_reload(work, pki, model):
    certdir = os.path.join(work, "live")
    os.makedirs(certdir)
    cert, key = os.path.join(certdir, "tls.crt"), os.path.join(certdir, "tls.key")

    def install(name):
        """Replaces the live pair the way a rotation does (rename over)."""
        for src, dst in ((name + ".pem", cert), (name + ".key", key)):
            shutil.copy(os.path.join(pki, src), dst + ".new")
            os.rename(dst + ".new", dst)

    install("server")
    d = H.Daemon("reload", ["--model", model, "--tls-cert", cert, "--tls-key", key], work)
    port = d.port
    first = file_der(os.path.join(pki, "server.pem"))
    second = file_der(os.path.join(pki, "server2.pem"))
    H.report("test_tls_serves_configured_cert", served_cert_der(port, pki) == first, "another certificate served")

    # clients predicting in a loop: new connections, and kept-alive ones
    stop = threading.Event()
    stats = {"ok": 0, "fail": []}
    lock = threading.Lock()

    def loop(keepalive):
        ctx = tls_ctx(pki)
        conn = None
        while not stop.is_set():
            try:
                st, c = https_predict(port, ctx, conn)
                conn = c if keepalive else None
                if not keepalive:
                    c.close()
                with lock:
                    if st == 200:
                        stats["ok"] += 1
                    else:
                        stats["fail"].append("status %d" % st)
            except Exception as e:  # noqa: BLE001 -- every failure counts
                with lock:
                    stats["fail"].append(repr(e))
                conn = None
    threads = [threading.Thread(target=loop, args=(k,)) for k in (False, False, True)]
    for t in threads:
        t.start()
    H.wait_until(10, lambda: stats["ok"] >= 20)
    served = []
    for i, name in enumerate(("server2", "server", "server2")):
        install(name)
        before = d.text().count("TLS certificate reloaded")
        d.proc.send_signal(signal.SIGHUP)
        H.wait_until(10, lambda: d.text().count("TLS certificate reloaded") > before)
        want = second if name == "server2" else first
        served.append(H.wait_until(5, lambda: served_cert_der(port, pki) == want))
        n0 = stats["ok"]
        H.wait_until(10, lambda: stats["ok"] >= n0 + 10)
    H.report("test_tls_sighup_new_cert_for_new_connections", all(served), "served after each reload: %s" % served)

    # a broken pair: the old certificate stays, the log says why
    shutil.copy(os.path.join(pki, "server.key"), key)  # key of the first, cert of the second
    d.proc.send_signal(signal.SIGHUP)
    failed = H.wait_until(10, lambda: "TLS reload failed" in d.text())
    n0 = stats["ok"]
    H.wait_until(10, lambda: stats["ok"] >= n0 + 10)
    stop.set()
    for t in threads:
        t.join()
    line = [ln for ln in d.text().splitlines() if "TLS reload failed" in ln]
    H.report("test_tls_sighup_failed_reload_keeps_old",
             failed and served_cert_der(port, pki) == second and line and
             ("tls-key '%s' does not belong" % key) in line[0] and "PRIVATE" not in line[0],
             "log: %s" % (line[:1] or d.text()[-400:]))
    H.report("test_tls_sighup_zero_failures", stats["ok"] > 50 and not stats["fail"],
             "%d ok, %d failed: %s" % (stats["ok"], len(stats["fail"]), stats["fail"][:3]))
    H.report("test_tls_sighup_stop", d.stop() == 0, "exit status")

    # --tls-reload-s: a rotation of the files is picked up without a signal
    install("server")
    d = H.Daemon("watch", ["--model", model, "--tls-cert", cert, "--tls-key", key, "--tls-reload-s", "1"], work)
    install("server2")
    H.report("test_tls_reload_s_follows_rotation",
             H.wait_until(10, lambda: served_cert_der(d.port, pki) == second, step=0.2) and
             "the TLS files changed: reloading them" in d.text(), d.text()[-400:])
    shutil.copy(os.path.join(pki, "server.key"), key)  # a broken pair: logged once, old one kept
    H.wait_until(10, lambda: "TLS reload failed" in d.text(), step=0.2)
    time.sleep(2.5)  # two more looks at the unchanged files: nothing more may be logged
    H.report("test_tls_reload_s_failure_logged_once",
             d.text().count("TLS reload failed") == 1 and served_cert_der(d.port, pki) == second,
             "%d failures logged" % d.text().count("TLS reload failed"))
    H.report("test_tls_reload_s_stop", d.stop() == 0, "exit status")


# ---- Prometheus over HTTPS ---------------------------------------------------------------

def test_prometheus(work, pki, model):
    if not shutil.which("prometheus"):
        H.skip("test_tls_prometheus_scrapes_https", "prometheus is not installed (Debian package prometheus)")
        return
    d = H.Daemon("prom", ["--model", model, "--tls-cert", os.path.join(pki, "server.pem"), "--tls-key",
                          os.path.join(pki, "server.key"), "--tls-client-ca", os.path.join(pki, "ca.pem")], work)
    ctx = tls_ctx(pki)
    for _ in range(3):
        https_predict(d.port, ctx)[1].close()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    pp = s.getsockname()[1]
    s.close()
    cfg = os.path.join(work, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: mnistd
    scheme: https
    tls_config:
      ca_file: %s
      cert_file: %s
      key_file: %s
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % (os.path.join(pki, "ca.pem"), os.path.join(pki, "client.pem"), os.path.join(pki, "client.key"), d.port))
    plog = open(os.path.join(work, "prometheus.log"), "wb")
    prom = subprocess.Popen(["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % pp], stdout=plog, stderr=plog)

    def value(q):
        try:
            url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (pp, urllib.request.quote(q))
            r = json.load(urllib.request.urlopen(url, timeout=2))["data"]["result"]
            return r[0]["value"][1] if r else ""
        except Exception:  # noqa: BLE001 -- not up yet
            return ""
    try:
        got = H.wait_until(60, lambda: value('up{job="mnistd"}') == "1" and
                           value('mnistd_http_requests_total{route="/predict",code="200"}'), step=0.2)
        H.report("test_tls_prometheus_scrapes_https", got == "3",
                 "predict 200 = %r, want 3; prometheus log: %s" % (got, open(plog.name).read()[-400:]))
    finally:
        prom.terminate()
        prom.wait()
        plog.close()
    H.report("test_tls_prometheus_stop", d.stop() == 0, "exit status")


# ---- bad input on the TLS port -------------------------------------------------------------

def closes_within(s, deadline):
    """Seconds until the server closed s (None if it did not within deadline)."""
    t0 = time.monotonic()
    _, closed = H.read_until_closed(s, deadline)
    return time.monotonic() - t0 if closed else None


def client_hello(port, pki):
    """The first flight of a real TLS client (a ClientHello), captured by
    running a handshake against a local socket that records it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = []

    def rec():
        c, _ = srv.accept()
        c.settimeout(5)
        got.append(c.recv(65536))
        c.close()
    t = threading.Thread(target=rec)
    t.start()
    try:
        with socket.create_connection(srv.getsockname(), timeout=5) as s:
            tls_ctx(pki).wrap_socket(s, server_hostname="127.0.0.1")
    except (ssl.SSLError, OSError):
        pass
    t.join()
    srv.close()
    return got[0]


def test_bad_input(work, pki, model):
    d = H.Daemon("abuse", ["--model", model, "--connection-timeout", str(TIMEOUT), "--tls-cert",
                           os.path.join(pki, "server.pem"), "--tls-key", os.path.join(pki, "server.key")], work)
    port = d.port
    limit = TIMEOUT + MARGIN

    s = H.raw_connect(port)
    s.sendall(os.urandom(16) + b"\x16\x03\x01\xff\xff" + os.urandom(3000))
    t = closes_within(s, limit + 5)
    s.close()
    H.report("test_tls_garbage_handshake_closed", t is not None and t <= limit and still_serves(port, pki),
             "closed after %s s (limit %.1f)" % (t, limit))

    s = H.raw_connect(port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    t0 = time.monotonic()
    buf, closed = H.read_until_closed(s, limit + 5)
    t = time.monotonic() - t0
    s.close()
    H.report("test_tls_plain_http_on_tls_port_closed",
             closed and t <= limit and not buf.startswith(b"HTTP/") and still_serves(port, pki),
             "closed=%s after %.2f s, answer %r" % (closed, t, buf[:40]))

    # slow-loris inside the handshake: a real ClientHello, one byte at a
    # time, for longer than the timeout
    hello = client_hello(port, pki)
    s = H.raw_connect(port)
    t0 = time.monotonic()
    closed_at = None
    for b in hello:
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed_at = time.monotonic() - t0
            break
        if H.closed_by_peer(s):
            closed_at = time.monotonic() - t0
            break
        if time.monotonic() - t0 > limit + 5:
            break
        time.sleep(0.2)
    if closed_at is None:
        closed_at = closes_within(s, limit + 5 - (time.monotonic() - t0))
        closed_at = closed_at + (time.monotonic() - t0) if closed_at is not None else None
    s.close()
    H.report("test_tls_slowloris_handshake_closed",
             closed_at is not None and closed_at <= limit and still_serves(port, pki),
             "closed after %s s (limit %.1f, %d-byte hello)" % (closed_at, limit, len(hello)))

    # renegotiation (TLS 1.2; TLS 1.3 has none): openssl s_client's "R"
    if shutil.which("openssl"):
        t0 = time.monotonic()
        p = subprocess.Popen(["openssl", "s_client", "-tls1_2", "-connect", "127.0.0.1:%d" % port,
                              "-CAfile", os.path.join(pki, "ca.pem")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = b""
        try:
            time.sleep(0)  # the handshake first: s_client reads "R" after it
            p.stdin.write(b"R\n")
            p.stdin.flush()
            out, _ = p.communicate(timeout=limit + 5)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        t = time.monotonic() - t0
        text = out.decode("latin-1")
        H.report("test_tls_renegotiation_closed",
                 "RENEGOTIATING" in text and p.returncode is not None and t <= limit and still_serves(port, pki),
                 "s_client ran %.2f s (limit %.1f): %s" % (t, limit, text[-300:]))
    else:
        H.skip("test_tls_renegotiation_closed", "openssl is not installed")

    # an idle TLS connection (handshake done, no request) is closed too
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        t = tls_ctx(pki).wrap_socket(raw, server_hostname="127.0.0.1")
        t0 = time.monotonic()
        t.settimeout(limit + 5)
        try:
            data = t.recv(1)
        except (ssl.SSLError, OSError):
            data = b""
        dt = time.monotonic() - t0
        H.report("test_tls_idle_connection_closed", data == b"" and dt <= limit, "closed after %.2f s" % dt)
    # a port scanner: 40 more failed handshakes (plain HTTP on the TLS port)
    # are counted, and the log says so in one line, not one line each
    for _ in range(40):
        s = H.raw_connect(port)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        H.read_until_closed(s, limit + 5)
        s.close()
    rc, code, body = curl(pki, port, "/metrics")
    failed = [int(l.split()[1]) for l in body.splitlines() if l.startswith("mnistd_tls_handshake_failures_total ")]
    lines = [l for l in d.text().splitlines() if "handshake" in l.lower()]
    seen = "mnistd_tls_handshake_failures_total %s, %d log lines about handshakes: %s" % (
        failed, len(lines), lines[:3])
    if H.report("test_tls_failed_handshakes_counted_not_each_logged",
                code == 200 and failed and failed[0] >= 40 and 1 <= len(lines) <= 2, seen):
        print("  " + seen)
    st, c = https_predict(port, tls_ctx(pki))
    c.close()
    H.report("test_tls_serving_after_abuse", st == 200 and d.proc.poll() is None, "predict %d" % st)
    H.report("test_tls_abuse_stop", d.stop() == 0, "exit status")


def main():
    if not shutil.which("openssl"):
        H.skip("test_tls", "openssl is not installed (scripts/deps.sh test installs it)")
        return
    work = H.workdir()
    try:
        pki = os.path.join(work, "pki")
        r = sh(["bash", os.path.join(H.ROOT, "tests", "tools", "mkcerts.sh"), pki])
        if r.returncode != 0:
            H.report("test_tls_mkcerts", False, r.stdout[-500:])
            return
        model = H.model_copy(work)
        if not model:
            H.skip("test_tls", "no shipped model (models/mnist-cnn.safetensors)")
            return
        test_startup(work, pki, model)
        test_https_and_mtls(work, pki, model)
        test_reload(work, pki, model)
        test_bad_input(work, pki, model)
        test_prometheus(work, pki, model)
    finally:
        H.cleanup(work)
    H.finish()


if __name__ == "__main__":
    main()
