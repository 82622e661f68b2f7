"""EfficientNet-Lite0 on ONNX Runtime: the same packaged weights, exported once, no download.

The export has the three outputs ingest reads (pooled features, ImageNet logits, the four region
logits of `forward_with_regions`) and a dynamic batch axis. Exporting, checking and choosing the
runtime are shared with MiniLM (models/onnx_runtime.py); this file says what is EfficientNet's.
Running an export needs only numpy and onnxruntime: no torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from models.onnx_runtime import OnnxFamily, RuntimeDecision, read_decision, session


class OnnxImageModel:
    """An ONNX Runtime session for the exported model: (B, 3, 224, 224) float32 -> (pooled, logits, regions)."""

    def __init__(self, path: Path, threads: Optional[int] = None):
        self.session = session(path, threads)
        self.path = Path(path)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pooled, logits, regions = self.session.run(["pooled", "logits", "regions"], {"image": np.ascontiguousarray(x, dtype=np.float32)})
        return pooled, logits, regions


class EfficientNetOnnx(OnnxFamily):
    name = "image"
    stem = "efficientnet-lite0"
    unit = "image"
    revision = "r3"  # three outputs (pooled, logits, regions); older two-output files are not reused

    def weights(self) -> Path:
        from models.efficientnet_io import packaged_weights_path

        return packaged_weights_path()

    def load_torch(self):
        from models.efficientnet import load_efficientnet_lite0

        return load_efficientnet_lite0("cpu")

    def export(self, torch_model, path: Path) -> None:
        import torch

        from models.efficientnet import WithRegions

        with torch.no_grad():
            torch.onnx.export(WithRegions(torch_model).eval(), (torch.zeros(2, 3, 224, 224),), str(path), input_names=["image"],
                              output_names=["pooled", "logits", "regions"],
                              dynamic_axes={"image": {0: "batch"}, "pooled": {0: "batch"}, "logits": {0: "batch"},
                                            "regions": {0: "batch"}},
                              opset_version=17, dynamo=False)

    def open(self, path: Path) -> OnnxImageModel:
        return OnnxImageModel(path)

    def sample(self) -> np.ndarray:
        # Real-looking inputs are not needed to compare two implementations of one network:
        # a fixed random batch exercises every channel.
        return np.random.default_rng(0).normal(0, 1, (16, 3, 224, 224)).astype(np.float32)

    def run_torch(self, torch_model, sample: np.ndarray):
        import torch

        with torch.inference_mode():
            return [t.numpy() for t in torch_model.forward_with_regions(torch.from_numpy(sample))]

    def run_onnx(self, runner: OnnxImageModel, sample: np.ndarray):
        return runner(sample)

    def timing_sample(self, sample: np.ndarray) -> tuple[np.ndarray, int]:
        return sample[:8], 8


IMAGE = EfficientNetOnnx()


def read_image_decision(cache_dir: Path) -> Optional[RuntimeDecision]:
    """The image model's stored runtime decision (cheap: no model is loaded)."""
    return read_decision(IMAGE, cache_dir)
