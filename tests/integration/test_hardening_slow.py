#!/usr/bin/env python3
"""Slow and abusive clients against the real daemon.

- slow-loris: 200 connections that send a partial request and then one more
  header byte now and then never finish; meanwhile a normal client's
  predictions must all answer 200 promptly, and the 200 slow connections are
  checked to still be open at the end (they really were held).
- idle timeout (--connection-timeout): a connection that sent nothing, one
  stuck in the middle of its request line, and an idle keep-alive connection
  are all closed by the daemon after the timeout, not before.
- per-address limit (--max-connections-per-ip): one address holding its
  limit gets its next connection closed at once; another address is served.
- global limit (--max-connections): with every slot held, libmicrohttpd
  stops accepting: a new connection waits unanswered in the kernel's listen
  queue and is served as soon as a slot frees up.
- header size (--max-header-bytes): headers over the limit answer a JSON 431,
  a request line over it a JSON 414; headers within it are served; headers
  past libmicrohttpd's own buffer still get a 431.
"""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import hardening as H  # noqa: E402

PNG = H.png_digit()
SLOW = int(os.environ.get("SLOWLORIS_CONNECTIONS", "200"))


def predictions_answer(d, n, max_latency, source=None):
    """n predictions, each on a new connection; returns (ok, why)."""
    worst = 0.0
    for i in range(n):
        t0 = time.monotonic()
        try:
            st, _, body = d.predict(PNG, timeout=max_latency + 5, source=source)
        except OSError as e:
            return False, "prediction %d: %s" % (i, e)
        dt = time.monotonic() - t0
        worst = max(worst, dt)
        if st != 200:
            return False, "prediction %d: status %d %s" % (i, st, body[:200])
        if dt > max_latency:
            return False, "prediction %d took %.2f s" % (i, dt)
    print("  %d predictions, slowest %.3f s" % (n, worst), flush=True)
    return True, ""


def test_slowloris(work, model):
    d = H.Daemon("slowloris", ["--model", model], work)
    socks = []
    try:
        for i in range(SLOW):
            s = H.raw_connect(d.port)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: victim\r\nContent-Type: image/png\r\nX-Slow: ")
            socks.append(s)
        stop = threading.Event()

        def trickle():
            # One more header byte on every connection about once a second:
            # each stays busy, never idle, never complete.
            while not stop.is_set():
                for s in socks:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
                stop.wait(1.0)
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        ok, why = predictions_answer(d, 100, 2.0)
        H.report("test_hardening_slowloris_predictions_answer", ok, why)
        # And on one keep-alive connection.
        c = d.conn()
        bad = ""
        for i in range(50):
            c.request("POST", "/predict", body=PNG, headers={"Content-Type": "image/png"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                bad = "status %d" % r.status
                break
        c.close()
        H.report("test_hardening_slowloris_keepalive", not bad, bad)
        stop.set()
        t.join()
        still = sum(1 for s in socks if not H.closed_by_peer(s))
        H.report("test_hardening_slowloris_held", still == SLOW,
                 "only %d of %d slow connections were still open" % (still, SLOW))
    finally:
        for s in socks:
            s.close()
        rc = d.stop()
    H.report("test_hardening_slowloris_exit_0", rc == 0, "exit status %s" % rc)


def test_idle_timeout(work, model):
    d = H.Daemon("idle", ["--model", model, "--connection-timeout", "1"], work)
    try:
        nothing = H.raw_connect(d.port)
        partial = H.raw_connect(d.port)
        partial.sendall(b"GET /heal")
        keep = H.raw_connect(d.port)
        keep.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        ans = b""
        while b"\r\n\r\n" not in ans or not ans.endswith(b"}\n"):
            chunk = keep.recv(4096)
            if not chunk:
                break
            ans += chunk
        ok_answer = ans.startswith(b"HTTP/1.1 200")
        socks = {"no bytes": nothing, "partial request line": partial, "idle keep-alive": keep}
        closed_at = {}
        early = [n for n, s in socks.items() if H.closed_by_peer(s)]

        def all_closed():
            for n, s in socks.items():
                if n not in closed_at and H.closed_by_peer(s):
                    closed_at[n] = time.monotonic() - t0
            return len(closed_at) == len(socks)
        H.wait_until(10, all_closed)
        why = "closed after %s; open: %s; closed at once: %s" % (
            {k: round(v, 2) for k, v in closed_at.items()}, sorted(set(socks) - set(closed_at)), early)
        H.report("test_hardening_idle_timeout",
                 ok_answer and not early and len(closed_at) == 3 and
                 all(0.5 <= v <= 5 for v in closed_at.values()), why)
        print("  idle connections closed after %s s" % {k: round(v, 2) for k, v in closed_at.items()})
        for s in socks.values():
            s.close()
    finally:
        rc = d.stop()
    H.report("test_hardening_idle_exit_0", rc == 0, "exit status %s" % rc)


def refused_at_once(port, source):
    """True when a new connection from source is closed by the daemon within
    3 s without an answer."""
    try:
        s = H.raw_connect(port, source)
    except OSError:
        return True  # refused before it was set up: just as good
    try:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            return True
        data, closed = H.read_until_closed(s, 3)
        return closed and not data.startswith(b"HTTP/1.1 200")
    finally:
        s.close()


def hold(port, source, n):
    """n keep-alive connections from source, each with one request answered:
    proof that the daemon accepted it and counts it until it closes."""
    out = []
    for _ in range(n):
        s = H.raw_connect(port, source)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        ans = b""
        while not ans.endswith(b"}\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("a held connection from %s was closed: %r" % (source, ans[:80]))
            ans += chunk
        out.append(s)
    return out


def test_connection_limits(work, model):
    d = H.Daemon("limits", ["--model", model, "--max-connections", "30",
                            "--max-connections-per-ip", "10"], work)
    held = []
    try:
        held += hold(d.port, "127.0.0.1", 10)
        # The daemon counts a connection once it accepted it: wait for that.
        H.report("test_hardening_per_ip_limit",
                 H.wait_until(5, lambda: refused_at_once(d.port, "127.0.0.1")),
                 "an 11th connection from 127.0.0.1 was served")
        ok, why = predictions_answer(d, 5, 2.0, source="127.0.0.2")
        H.report("test_hardening_per_ip_other_address_served", ok, why)
        # Fresh addresses: 127.0.0.2's finished connections may not be
        # reaped yet and would count against its own limit.
        held += hold(d.port, "127.0.0.5", 10) + hold(d.port, "127.0.0.6", 10)
        # Every slot held: libmicrohttpd stops accepting, so a new client
        # waits in the kernel's listen queue (no answer, not closed) ...
        waiting = H.raw_connect(d.port, "127.0.0.4")
        waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, closed = H.read_until_closed(waiting, 1.5)
        H.report("test_hardening_global_limit_holds_back", data == b"" and not closed,
                 "a 31st connection got %r (closed %s)" % (data[:60], closed))
        # ... and is served as soon as one slot frees up.
        held.pop(0).close()
        data, closed = H.read_until_closed(waiting, 10)
        waiting.close()
        H.report("test_hardening_global_limit_served_when_free", data.startswith(b"HTTP/1.1 200"),
                 "after a slot freed: %r (closed %s)" % (data[:60], closed))
        for s in held[:10]:
            s.close()
        held = held[10:]

        def served():
            try:
                return d.request("GET", "/healthz", source="127.0.0.1", timeout=3)[0] == 200
            except OSError:
                return False
        H.report("test_hardening_limit_recovers", H.wait_until(10, served),
                 "no connection served after slots were freed")
    finally:
        for s in held:
            s.close()
        rc = d.stop()
    H.report("test_hardening_limits_exit_0", rc == 0, "exit status %s" % rc)


def json_error(answer, status):
    """The raw answer carries a JSON {"error", "status": status} body."""
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"content-type: application/json" not in head.lower():
        return False
    try:
        d = json.loads(body)
    except ValueError:
        return False
    return d.get("status") == status and isinstance(d.get("error"), str) and d["error"] != ""


def test_header_limit(work, model):
    d = H.Daemon("headers", ["--model", model, "--max-header-bytes", "8192"], work)
    try:
        def send(req):
            s = H.raw_connect(d.port)
            try:
                s.sendall(req)
            except OSError:
                pass
            data, closed = H.read_until_closed(s, 5)
            s.close()
            return data, closed
        small, _ = send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000 + b"\r\n"
                        b"Connection: close\r\n\r\n")
        H.report("test_hardening_header_within_limit", small.startswith(b"HTTP/1.1 200"), small[:100])
        big, closed = send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(16)) + b"\r\n")
        H.report("test_hardening_header_over_limit_431", big.startswith(b"HTTP/1.1 431") and closed,
                 "answer %r closed %s" % (big[:100], closed))
        H.report("test_hardening_header_431_json", json_error(big, 431), "answer %r" % big[:400])
        line, closed = send(b"GET /" + b"a" * 16000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        H.report("test_hardening_request_line_over_limit_414", line.startswith(b"HTTP/1.1 414") and closed,
                 "answer %r closed %s" % (line[:100], closed))
        H.report("test_hardening_request_line_414_json", json_error(line, 414), "answer %r" % line[:400])
        # Past libmicrohttpd's own buffer (2 x the limit + 8 KiB) it answers
        # itself; still a 431 and a closed connection.
        huge, closed = send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(60)) + b"\r\n")
        H.report("test_hardening_header_far_over_limit_431", huge.startswith(b"HTTP/1.1 431") and closed,
                 "answer %r closed %s" % (huge[:100], closed))
        # Big bodies still stream through the bounded connection memory.
        st, _, body = d.predict(PNG)
        H.report("test_hardening_header_limit_predict", st == 200, "status %d %s" % (st, body[:200]))
    finally:
        rc = d.stop()
    H.report("test_hardening_headers_exit_0", rc == 0, "exit status %s" % rc)


def main():
    work = H.workdir()
    try:
        model = H.model_copy(work)
        if not model:
            H.skip("test_hardening_slow", "no shipped model (models/mnist-cnn.safetensors)")
            return
        test_slowloris(work, model)
        test_idle_timeout(work, model)
        test_connection_limits(work, model)
        test_header_limit(work, model)
    finally:
        H.cleanup(work)
    H.finish()


if __name__ == "__main__":
    main()
