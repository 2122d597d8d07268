#!/usr/bin/env python3
"""Clients posting predictions while a container is stopped.

  drain_client.py PORT PNG READY_FILE

Runs the clients of tests/integration/test_hardening_shutdown.py (8 with a
new connection per request, 4 on keep-alive connections) against
127.0.0.1:PORT, writes READY_FILE once 200 answers flow, and ends when the
daemon has closed its listener (or after 60 s). Prints one JSON line: the
clients' tallies (ok, shutting_down, refused, unsent, no_answer, other)
and up to 10 unexpected answers. The caller stops the container meanwhile
and judges the tallies against the daemon's access log.
"""
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import test_hardening_shutdown as S  # noqa: E402


def main():
    port, png, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with open(png, "rb") as f:
        S.PNG = f.read()
    tally, stop = S.Tally(), threading.Event()
    threads = [threading.Thread(target=S.new_conn_client, args=(port, tally, stop)) for _ in range(8)]
    threads += [threading.Thread(target=S.keepalive_client, args=(port, tally, stop)) for _ in range(4)]
    for t in threads:
        t.start()
    end = time.monotonic() + 60
    while tally.counts.get("ok", 0) < 200 and time.monotonic() < end:
        time.sleep(0.05)
    with open(ready, "w") as f:
        f.write("%d\n" % tally.counts.get("ok", 0))
    # The new-connection clients end when the listener is closed.
    while any(t.is_alive() for t in threads[:8]) and time.monotonic() < end:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(15)
    print(json.dumps({"counts": tally.counts, "other": tally.other}), flush=True)


if __name__ == "__main__":
    main()
