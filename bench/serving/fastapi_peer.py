"""The FastAPI peer of the serving benchmark: POST /predict with a PNG body,
mnistd's network in PyTorch (weights from MNISTD_MODEL), run under uvicorn.

    MNISTD_MODEL=models/mnist-cnn.safetensors uvicorn --app-dir bench/serving fastapi_peer:app
"""
import os

import torch
from fastapi import FastAPI, HTTPException, Request

from mnist_torch import Net, answer, decode_png

torch.set_num_threads(int(os.environ.get("PEER_TORCH_THREADS", "1")))
model = Net(os.environ.get("MNISTD_MODEL", "models/mnist-cnn.safetensors"))
app = FastAPI()


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/predict")
async def predict(request: Request):
    try:
        x = decode_png(await request.body())
    except Exception as e:  # PIL raises several kinds
        raise HTTPException(status_code=400, detail=f"not a PNG: {e}")
    with torch.no_grad():
        return answer(model(x)[0])
