"""Helpers for the hardening tests (tests/integration/test_hardening_*.py):
start the real daemon on a free port, talk raw HTTP over sockets, read its
memory and metrics, and print PASS/FAIL/SKIP lines as tests/run.sh counts
them. Everything polls with deadlines; nothing sleeps to wait for a state."""
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
BIN = os.environ.get("MNISTD_BIN", os.path.join(ROOT, BUILD, "mnistd"))
DATA = os.environ.get("MNISTD_DATA", "")
SHIPPED_MODEL = os.path.join(ROOT, "models", "mnist-cnn.safetensors")
# A ThreadSanitizer build runs 5-20 times slower: deadlines that bound a
# failure are SLOW times longer there (as in tests/contract/lib.sh).
SLOW = 10 if os.environ.get("SANITIZER") == "thread" else 1

FAILS = 0


def report(name, ok, why=""):
    """One PASS or FAIL line; returns ok."""
    global FAILS
    if ok:
        print("PASS %s" % name, flush=True)
    else:
        FAILS += 1
        print("FAIL %s: %s" % (name, why), flush=True)
    return ok


def skip(name, why):
    print("SKIP %s: %s" % (name, why), flush=True)


def finish():
    sys.exit(1 if FAILS else 0)


def wait_until(deadline_s, pred, step=0.02):
    """Polls pred() until it is true or deadline_s seconds passed."""
    end = time.monotonic() + deadline_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return v
        time.sleep(step)


def png_digit(w=28, h=28):
    """An 8-bit grayscale PNG of a thick vertical bar (a '1'): real ink, so
    the daemon classifies it instead of answering 422."""
    rows = []
    for y in range(h):
        row = bytearray(w)
        if h // 5 <= y < h - h // 5:
            for x in range(w // 2 - max(1, w // 10), w // 2 + max(1, w // 10)):
                row[x] = 255
        rows.append(b"\x00" + bytes(row))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


class Daemon:
    """build/mnistd serve on 127.0.0.1 and a free port, stderr in a log file."""

    def __init__(self, name, args, workdir, env=None):
        self.log_path = os.path.join(workdir, "daemon-%s.log" % name)
        self.log = open(self.log_path, "wb")
        e = dict(os.environ)
        if env:
            e.update(env)
        self.proc = subprocess.Popen([BIN, "serve", "--port", "0", "--bind", "127.0.0.1"] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=e)
        self.pid = self.proc.pid
        self.port = None
        started = wait_until(30 * SLOW, lambda: self._port() or self.proc.poll() is not None)
        if not self.port:
            raise RuntimeError("daemon %s did not start: %s" % (name, self.text()[-2000:]))
        del started

    def _port(self):
        for line in self.text().splitlines():
            if '"msg":"listening on http://' in line or '"msg":"listening on https://' in line:
                self.port = json.loads(line)["port"]
                return True
        return False

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def conn(self, timeout=10, source=None):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(source, 0) if source else None)

    def request(self, method, path, body=None, headers=None, timeout=10, source=None):
        """One request on a new connection: (status, headers dict, body bytes)."""
        c = self.conn(timeout, source)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def predict(self, png, timeout=10, source=None):
        return self.request("POST", "/predict", png, {"Content-Type": "image/png"}, timeout, source)

    def metrics(self):
        """{series: value} from GET /metrics."""
        _, _, b = self.request("GET", "/metrics")
        out = {}
        for line in b.decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def rss_bytes(self):
        """VmRSS from /proc/PID/status."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig, waits; the exit status (None if it did not exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.log.close()
        return rc


def raw_connect(port, source=None, timeout=5):
    """A plain TCP connection to the daemon."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_by_peer(s):
    """True when the server closed (or reset) the connection; False while it
    is open with nothing to read. Never blocks (a socket with a timeout
    would first wait for data, so it is made non-blocking for the check)."""
    saved = s.gettimeout()
    s.setblocking(False)
    try:
        d = s.recv(65536, socket.MSG_PEEK)
        return d == b"" or not d.startswith(b"HTTP/")  # an error answer waiting counts as open
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        s.settimeout(saved)


def read_until_closed(s, deadline_s):
    """Reads everything the server sends until it closes; (bytes, closed)."""
    end = time.monotonic() + deadline_s
    buf = b""
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            return buf, True
        if not d:
            return buf, True
        buf += d
    return buf, False


def model_copy(work):
    """A private copy of the shipped model in work (tests may replace their
    model file; the shipped one is never touched), or None without one."""
    if not os.path.exists(SHIPPED_MODEL):
        return None
    dst = os.path.join(work, "model.safetensors")
    shutil.copyfile(SHIPPED_MODEL, dst)
    return dst


def workdir():
    d = tempfile.mkdtemp(prefix="mnistd-hard.")
    return d


def cleanup(d):
    shutil.rmtree(d, ignore_errors=True)
