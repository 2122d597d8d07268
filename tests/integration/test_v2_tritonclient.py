#!/usr/bin/env python3
"""The Open Inference Protocol (KServe v2) driven by NVIDIA's own client,
tritonclient[http] (pinned in requirements/test.txt, installed into
build/venv-test by scripts/deps.sh test): health, readiness and metadata; infer
with FP32 in the binary tensor extension (the client's default) and in JSON,
with UINT8 and with BYTES holding PNG files; the classification extension;
the request id. Then the first 1000 MNIST test images through v2 in each
input form get the same digits as the engine (`mnistd predict` on the same
images as PNG files), and bad requests get 4xx JSON errors while the daemon
keeps serving. Runs itself again under build/venv-test's python; SKIP when that
environment or the MNIST data is missing."""
import gzip
import http.client
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VENV = os.path.join(ROOT, "build", "venv-test")
VENV_PY = os.path.join(VENV, "bin", "python")
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
N = 1000
BATCH = 50


def reexec_in_venv():
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.access(VENV_PY, os.X_OK) or not os.path.exists(os.path.join(VENV, "requirements.sha256")):
        print("SKIP test_v2_tritonclient: build/venv-test is missing (bash scripts/deps.sh test makes it)")
        sys.exit(0)
    os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])


reexec_in_venv()

import numpy as np  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

import hardening as H  # noqa: E402
from test_http_accuracy import idx, png_gray  # noqa: E402


def probs_of(client, inp, outputs=None, **kw):
    r = client.infer("mnist", [inp], outputs=outputs, **kw)
    return r.as_numpy("probabilities"), r


def fp32_input(x, binary=True):
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x.astype(np.float32), binary_data=binary)
    return inp


def uint8_input(u):
    inp = httpclient.InferInput("input", list(u.shape), "UINT8")
    inp.set_data_from_numpy(u)
    return inp


def bytes_input(pngs):
    inp = httpclient.InferInput("input", [len(pngs)], "BYTES")
    inp.set_data_from_numpy(np.array(pngs, dtype=np.object_))
    return inp


def engine_digits(work, model, images):
    """Digit and top-two margin of each image by `mnistd predict`."""
    files = []
    for i in range(N):
        f = os.path.join(work, "t%04d.png" % i)
        with open(f, "wb") as fh:
            fh.write(png_gray(images[i].tobytes(), 28, 28))
        files.append(f)
    out = subprocess.run([H.BIN, "predict", "--model", model, "--probs"] + files, check=True,
                         capture_output=True, text=True).stdout
    digits, margins = [], []
    for line in out.splitlines():
        parts = line.split()
        p = sorted(float(v) for v in parts[3:13])
        digits.append(int(parts[1]))
        margins.append(p[-1] - p[-2])
    return digits, margins, files


def compare(name, got, want, margins):
    """PASS when every digit matches, except near-ties (top two within 1e-4:
    a batched forward pass may round differently in the last bits)."""
    bad = [i for i in range(N) if got[i] != want[i] and margins[i] > 1e-4]
    ties = sum(1 for i in range(N) if got[i] != want[i] and margins[i] <= 1e-4)
    H.report(name, not bad and len(got) == N,
             "%d of %d differ from the engine, e.g. images %s" % (len(bad), N, bad[:5]))
    return ties


def main():
    if not H.DATA:
        H.skip("test_v2_tritonclient", "MNISTD_DATA is not set (the MNIST test images are needed)")
        return 0
    work = tempfile.mkdtemp(prefix="mnistd-v2.")
    d = None
    try:
        model = H.SHIPPED_MODEL
        raw = idx(H.DATA, "t10k-images-idx3-ubyte")[16:16 + N * 784]
        images = np.frombuffer(raw, dtype=np.uint8).reshape(N, 28, 28, 1)
        want, margins, files = engine_digits(work, model, images)
        d = H.Daemon("v2", ["--model", model], work)
        client = httpclient.InferenceServerClient(url="127.0.0.1:%d" % d.port)

        # health, readiness, metadata
        H.report("v2_live", client.is_server_live())
        H.report("v2_ready", client.is_server_ready())
        meta = client.get_server_metadata()
        H.report("v2_server_metadata", meta["name"] == "mnistd" and
                 {"binary_tensor_data", "classification"} <= set(meta["extensions"]), str(meta))
        mm = client.get_model_metadata("mnist")
        version = mm["versions"][0] if mm.get("versions") else ""
        H.report("v2_model_metadata",
                 mm["name"] == "mnist" and mm["inputs"] == [{"name": "input", "datatype": "FP32",
                                                             "shape": [-1, 28, 28, 1]}]
                 and mm["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
                 and len(version) > 0, str(mm))
        H.report("v2_model_ready", client.is_model_ready("mnist") and client.is_model_ready("mnist", version))
        H.report("v2_model_metadata_versioned",
                 client.get_model_metadata("mnist", model_version=version)["versions"] == [version])
        H.report("v2_unknown_model_not_ready", not client.is_model_ready("digits"))

        # one request in every form
        x = images[:4].astype(np.float32) / 255.0
        pb, r = probs_of(client, fp32_input(x), request_id="req-7")
        H.report("v2_infer_fp32_binary", pb.shape == (4, 10) and pb.dtype == np.float32 and
                 np.allclose(pb.sum(axis=1), 1, atol=1e-5) and list(pb.argmax(1)) == want[:4],
                 "%s %s" % (pb.shape, pb.argmax(1)))
        H.report("v2_infer_id_echoed", r.get_response()["id"] == "req-7" and
                 r.get_response()["model_version"] == version, str(r.get_response()))
        pj, r = probs_of(client, fp32_input(x, binary=False),
                         [httpclient.InferRequestedOutput("probabilities", binary_data=False)])
        H.report("v2_infer_fp32_json", np.allclose(pj, pb, atol=1e-6) and
                 "data" in r.get_response()["outputs"][0], "max diff %g" % abs(pj - pb).max())
        pu, _ = probs_of(client, uint8_input(images[:4]))
        H.report("v2_infer_uint8", np.allclose(pu, pb, atol=1e-6), "max diff %g" % abs(pu - pb).max())
        pngs = [open(f, "rb").read() for f in files[:4]]
        pp, _ = probs_of(client, bytes_input(pngs))
        H.report("v2_infer_bytes_png", np.allclose(pp, pb, atol=1e-6), "max diff %g" % abs(pp - pb).max())
        flat = fp32_input(x.reshape(4, 784))
        pf, _ = probs_of(client, flat)
        H.report("v2_infer_fp32_flat_784", np.allclose(pf, pb, atol=1e-6))

        # classification, binary and JSON
        for binary in (True, False):
            out = [httpclient.InferRequestedOutput("probabilities", binary_data=binary, class_count=3)]
            c, r = probs_of(client, fp32_input(x), out)
            ok = c.shape == (4, 3)
            for i in range(4):
                entries = [e.decode() if isinstance(e, bytes) else e for e in c[i]]
                scores = [float(e.split(":")[0]) for e in entries]
                idxs = [int(e.split(":")[1]) for e in entries]
                top = list(np.argsort(-pb[i], kind="stable")[:3])
                ok = ok and idxs == top and scores == sorted(scores, reverse=True) and \
                    all(abs(s - float(pb[i][j])) < 1e-6 for s, j in zip(scores, idxs))
            H.report("v2_classification_%s" % ("binary" if binary else "json"), ok, str(c))

        # the first 1000 test images, in each form, against the engine
        def run_all(make_input):
            got = []
            for s in range(0, N, BATCH):
                p, _ = probs_of(client, make_input(s, s + BATCH))
                got += [int(v) for v in p.argmax(1)]
            return got
        xs = images.astype(np.float32) / 255.0
        ties = compare("v2_1000_fp32_binary_same_digits_as_engine",
                       run_all(lambda a, b: fp32_input(xs[a:b])), want, margins)
        compare("v2_1000_fp32_json_same_digits_as_engine",
                run_all(lambda a, b: fp32_input(xs[a:b], binary=False)), want, margins)
        compare("v2_1000_uint8_same_digits_as_engine", run_all(lambda a, b: uint8_input(images[a:b])), want,
                margins)
        allpng = [open(f, "rb").read() for f in files]
        compare("v2_1000_png_same_digits_as_engine", run_all(lambda a, b: bytes_input(allpng[a:b])), want,
                margins)
        labels = idx(H.DATA, "t10k-labels-idx1-ubyte")[8:8 + N]
        print("v2: engine accuracy %.4f on the first %d test images; %d near-ties"
              % (sum(int(w == lab) for w, lab in zip(want, labels)) / N, N, ties))

        # bad requests through the client: 4xx with the server's message
        def refused(name, status, fn):
            try:
                fn()
            except InferenceServerException as e:
                H.report(name, e.status() == str(status) and len(e.message()) > 0,
                         "status %s: %s" % (e.status(), e.message()))
                return
            H.report(name, False, "accepted")
        bad_shape = httpclient.InferInput("input", [1, 28, 28, 3], "FP32")
        bad_shape.set_data_from_numpy(np.zeros((1, 28, 28, 3), np.float32))
        refused("v2_client_wrong_shape_400", 400, lambda: client.infer("mnist", [bad_shape]))
        bad_type = httpclient.InferInput("input", [1, 784], "INT64")
        bad_type.set_data_from_numpy(np.zeros((1, 784), np.int64))
        refused("v2_client_wrong_datatype_400", 400, lambda: client.infer("mnist", [bad_type]))
        bad_name = httpclient.InferInput("pixels", [1, 784], "FP32")
        bad_name.set_data_from_numpy(np.zeros((1, 784), np.float32))
        refused("v2_client_unknown_input_400", 400, lambda: client.infer("mnist", [bad_name]))
        refused("v2_client_unknown_model_404", 404, lambda: client.infer("digits", [fp32_input(x[:1])]))
        refused("v2_client_unknown_version_404", 404,
                lambda: client.infer("mnist", [fp32_input(x[:1])], model_version="0000000000000000"))
        refused("v2_client_too_many_images_413", 413, lambda: client.infer("mnist", [fp32_input(xs[:65])]))
        refused("v2_client_out_of_range_422", 422, lambda: client.infer("mnist", [fp32_input(x[:1] * 255)]))
        refused("v2_client_unknown_output_400", 400, lambda: client.infer(
            "mnist", [fp32_input(x[:1])], outputs=[httpclient.InferRequestedOutput("logits")]))

        # bad bodies the client would not send, on the wire
        def post(body, headers=None, path="/v2/models/mnist/infer"):
            return d.request("POST", path, body, headers or {})
        one = json.dumps({"name": "input", "shape": [1, 784], "datatype": "FP32",
                          "parameters": {"binary_data_size": 3136}})
        head = ('{"inputs":[%s]}' % one).encode()
        raw_cases = [
            ("v2_wire_malformed_json_400", 400, b'{"inputs":[{"name":"input",', {}),
            ("v2_wire_header_length_beyond_body_400", 400, head + bytes(3136),
             {"Inference-Header-Content-Length": str(len(head) + 5000)}),
            ("v2_wire_binary_size_beyond_body_400", 400, head + bytes(100),
             {"Inference-Header-Content-Length": str(len(head))}),
            ("v2_wire_data_length_mismatch_400", 400,
             b'{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[0,0,0]}]}', {}),
            ("v2_wire_huge_shape_413", 413,
             b'{"inputs":[{"name":"input","shape":[1000000000000000,28,28,1],"datatype":"FP32","data":[0]}]}', {}),
            ("v2_wire_huge_inner_shape_400", 400,
             b'{"inputs":[{"name":"input","shape":[1,4000000000000000],"datatype":"FP32","data":[0]}]}', {}),
            ("v2_wire_huge_bytes_length_400", 400,
             b'{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":8}}]}'
             + b"\xff\xff\xff\xffabcd", {"Inference-Header-Content-Length": "97"}),
        ]
        hwm0 = hwm(d.pid)
        for name, status, body, headers in raw_cases:
            if "huge_bytes" in name:
                headers = {"Inference-Header-Content-Length": str(body.index(b"}}]}") + 4)}
            st, hd, b = post(body, headers)
            ok = st == status and hd.get("content-type", "").startswith("application/json")
            try:
                ok = ok and isinstance(json.loads(b)["error"], str)
            except (ValueError, KeyError):
                ok = False
            H.report(name, ok, "status %d: %s" % (st, b[:200]))
        for _ in range(200):
            post(raw_cases[4][2])
        grown = hwm(d.pid) - hwm0
        H.report("v2_huge_declared_shapes_allocate_nothing", grown < 16 << 20,
                 "peak resident memory grew by %d bytes over 200 requests" % grown)
        p_after, _ = probs_of(client, fp32_input(x))
        H.report("v2_serving_after_bad_requests", client.is_server_ready() and np.allclose(p_after, pb, atol=1e-6))
        H.report("v2_daemon_alive", d.proc.poll() is None)
        return 0
    finally:
        if d is not None:
            rc = d.stop()
            H.report("v2_daemon_clean_exit", rc == 0, "exit status %s" % rc)
        import shutil
        shutil.rmtree(work, ignore_errors=True)


def hwm(pid):
    """Peak resident memory (VmHWM) in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    main()
    H.finish()
