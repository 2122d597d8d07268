#!/usr/bin/env python3
"""Exports an mnistd model file (safetensors) to ONNX with the `onnx` package
alone (no torch): the graph is built node by node from the weights.

    export_onnx.py [MODEL] [OUT]    default models/mnist-cnn.safetensors -> build/bench/mnist-cnn.onnx

The graph takes "image": float32 [N, 1, 28, 28] (pixels / 255, NCHW) and
gives "probabilities": float32 [N, 10]. mnistd computes in NHWC with
convolution weights (OC, KH, KW, IC); ONNX's Conv wants (OC, IC, KH, KW),
so the weights are transposed, and the activations are turned back to NHWC
before the flatten so that fc1's (64, 576) weights apply unchanged.
Needs onnx and safetensors (build/venv-bench, scripts/deps.sh bench).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17


def build(w):
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    x = "image"
    for i in (1, 2, 3):
        wt = const(f"conv{i}.weight", w[f"conv{i}.weight"].transpose(0, 3, 1, 2))
        b = const(f"conv{i}.bias", w[f"conv{i}.bias"])
        nodes.append(helper.make_node("Conv", [x, wt, b], [f"conv{i}"], kernel_shape=[3, 3]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        x = f"relu{i}"
        if i < 3:
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{i}"], kernel_shape=[2, 2],
                                          strides=[2, 2]))
            x = f"pool{i}"
    nodes.append(helper.make_node("Transpose", [x], ["nhwc"], perm=[0, 2, 3, 1]))
    nodes.append(helper.make_node("Flatten", ["nhwc"], ["flat"], axis=1))
    for i, (inp, act) in enumerate((("flat", "Relu"), ("fc1.relu", "Softmax")), start=1):
        wt = const(f"fc{i}.weight", w[f"fc{i}.weight"])
        b = const(f"fc{i}.bias", w[f"fc{i}.bias"])
        nodes.append(helper.make_node("Gemm", [inp, wt, b], [f"fc{i}"], transB=1))
        out = "probabilities" if act == "Softmax" else f"fc{i}.relu"
        attrs = {"axis": 1} if act == "Softmax" else {}
        nodes.append(helper.make_node(act, [f"fc{i}"], [out], **attrs))
    graph = helper.make_graph(
        nodes, "mnist-cnn-v1",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mnistd export_onnx.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv):
    src = argv[1] if len(argv) > 1 else "models/mnist-cnn.safetensors"
    out = argv[2] if len(argv) > 2 else "build/bench/mnist-cnn.onnx"
    model = build(load_file(src))
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    tmp = out + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, out)
    print(f"{out}: ONNX opset {OPSET}, {sum(int(np.prod(t.dims)) for t in model.graph.initializer)} "
          f"parameters, from {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
