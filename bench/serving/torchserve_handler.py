"""TorchServe handler for mnistd's network: the model archive holds the
mnistd model file (safetensors) and mnist_torch.py. One PNG per request
body; answers {"digit", "confidence", "probabilities"}."""
import os

import torch

from mnist_torch import Net, answer, decode_png


class MnistHandler:
    def __init__(self):
        self.model = None

    def initialize(self, context):
        # One intra-op thread per worker: the workers share the cores.
        torch.set_num_threads(int(os.environ.get("PEER_TORCH_THREADS", "1")))
        d = context.system_properties.get("model_dir")
        self.model = Net(os.path.join(d, context.manifest["model"]["serializedFile"]))

    def handle(self, data, context):
        x = torch.cat([decode_png(row.get("data") or row.get("body")) for row in data])
        with torch.no_grad():
            probs = self.model(x)
        return [answer(p) for p in probs]


_service = MnistHandler()


def handle(data, context):
    if _service.model is None:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
