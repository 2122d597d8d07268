"""mnistd's network in PyTorch with the weights of an mnistd model file, for
the serving peers (TorchServe's handler and the FastAPI app), and the PNG
decoding they share: a 28x28 8-bit gray PNG scaled to [0, 1], as mnistd
takes an MNIST digit."""
import io

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from safetensors.numpy import load_file


class Net(nn.Module):
    def __init__(self, path):
        super().__init__()
        w = load_file(path)
        self.convs = nn.ModuleList()
        for i in (1, 2, 3):
            k = w[f"conv{i}.weight"]                       # (OC, KH, KW, IC)
            c = nn.Conv2d(k.shape[3], k.shape[0], 3)
            c.weight.data = torch.from_numpy(np.ascontiguousarray(k.transpose(0, 3, 1, 2)))
            c.bias.data = torch.from_numpy(w[f"conv{i}.bias"].copy())
            self.convs.append(c)
        self.fcs = nn.ModuleList()
        for i in (1, 2):
            k = w[f"fc{i}.weight"]                         # (OUT, IN)
            f = nn.Linear(k.shape[1], k.shape[0])
            f.weight.data = torch.from_numpy(k.copy())
            f.bias.data = torch.from_numpy(w[f"fc{i}.bias"].copy())
            self.fcs.append(f)
        self.eval()

    def forward(self, x):                                  # x: (N, 1, 28, 28)
        for i, c in enumerate(self.convs):
            x = torch.relu(c(x))
            if i < 2:
                x = torch.max_pool2d(x, 2)
        x = x.permute(0, 2, 3, 1).flatten(1)               # NHWC order, as fc1 expects
        x = torch.relu(self.fcs[0](x))
        return torch.softmax(self.fcs[1](x), dim=1)


def decode_png(data):
    """A PNG's bytes -> float tensor (1, 1, 28, 28); ValueError if unusable."""
    img = Image.open(io.BytesIO(data)).convert("L")
    if img.size != (28, 28):
        img = img.resize((28, 28))
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).reshape(1, 1, 28, 28)


def answer(probs):
    p = probs.tolist()
    d = int(np.argmax(p))
    return {"digit": d, "confidence": p[d], "probabilities": p}
