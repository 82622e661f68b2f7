"""EfficientNet-Lite0 on ONNX Runtime: the same packaged weights, exported once, no download.

The export lives in the data dir (`models/onnx/`), named by a hash of the weights file and the
torch version, so a new weights package or exporter gives a new file. Whether ONNX Runtime or
PyTorch is faster depends on the machine, so `choose_runtime` times both on a 224 px batch and
keeps the decision (with the timings) in a JSON file beside the export; `python -m core status`
reads that file. Both runtimes return the same outputs: pooled features and ImageNet logits.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

DECISION_FILE = "image-runtime.json"
# The export must reproduce PyTorch's outputs before it is ever used.
MIN_COSINE = 0.999


@dataclass
class RuntimeDecision:
    runtime: str  # "onnx" or "torch"
    reason: str
    torch_ms_per_image: Optional[float] = None
    onnx_ms_per_image: Optional[float] = None
    onnx_path: Optional[str] = None
    key: str = ""  # weights + library versions the decision was measured with
    mode: str = "auto"  # what was asked for: "auto" or "onnx"


def _key(weights: Path) -> str:
    import onnxruntime
    import torch

    h = hashlib.sha256()
    with open(weights, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    # "r3": the export has three outputs (pooled, logits, regions); older two-output files are not reused.
    return f"{h.hexdigest()[:12]}-r3-torch{torch.__version__}-ort{onnxruntime.__version__}".replace("+", "_")


def export_onnx(model, path: Path) -> Path:
    """Export `model` (pooled, logits, region logits) with a dynamic batch axis; atomic, so a killed
    export leaves no half file."""
    import torch

    from models.efficientnet import WithRegions

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    x = torch.zeros(2, 3, 224, 224)
    try:
        with torch.no_grad():
            torch.onnx.export(WithRegions(model).eval(), (x,), str(tmp), input_names=["image"],
                              output_names=["pooled", "logits", "regions"],
                              dynamic_axes={"image": {0: "batch"}, "pooled": {0: "batch"}, "logits": {0: "batch"},
                                            "regions": {0: "batch"}},
                              opset_version=17, dynamo=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class OnnxImageModel:
    """An ONNX Runtime session for the exported model: (B, 3, 224, 224) float32 -> (pooled, logits, regions)."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # As many threads as torch uses and no spinning: on a small machine idle spinning threads
        # steal the cores that decoding and the text model need.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.path = Path(path)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pooled, logits, regions = self.session.run(["pooled", "logits", "regions"], {"image": np.ascontiguousarray(x, dtype=np.float32)})
        return pooled, logits, regions


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def _ms_per_image(fn, x, repeats: int = 2) -> float:
    fn(x)  # warm-up (first run allocates)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / len(x)


def choose_runtime(cnn, weights: Path, cache_dir: Path, *, mode: str = "auto") -> tuple[RuntimeDecision, Optional[OnnxImageModel]]:
    """Export (once), check the export against PyTorch, and pick the faster runtime (`mode` auto),
    or use ONNX whenever it is correct (`mode` onnx). The decision is cached per weights+versions."""
    import torch

    folder = Path(cache_dir) / "onnx"
    key = _key(weights)
    path = folder / f"efficientnet-lite0-{key}.onnx"
    decision_file = folder / DECISION_FILE
    cached = read_decision(cache_dir)
    if cached is not None and cached.key == key and cached.mode == mode:
        if cached.runtime == "torch":
            return cached, None
        if path.is_file():
            return cached, OnnxImageModel(path, torch.get_num_threads())
    # Real-looking inputs are not needed to compare two implementations of one network:
    # a fixed random batch exercises every channel.
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (16, 3, 224, 224)).astype(np.float32))
    with torch.inference_mode():
        t_pooled, t_logits, t_regions = (t.numpy() for t in cnn.forward_with_regions(x))
    for attempt in range(2):
        if not path.is_file():
            export_onnx(cnn, path)
        try:
            onnx_model = OnnxImageModel(path, torch.get_num_threads())
            o_pooled, o_logits, o_regions = onnx_model(x.numpy())
            worst = float(min(_cosines(t_pooled, o_pooled).min(), _cosines(t_logits, o_logits).min(),
                              _cosines(t_regions.reshape(-1, t_regions.shape[-1]), o_regions.reshape(-1, o_regions.shape[-1])).min()))
        except Exception:  # a damaged file (e.g. from a full disk) reads as a disagreement
            onnx_model, worst = None, -1.0
        if worst >= MIN_COSINE or attempt == 1:
            break
        path.unlink()  # a stale or damaged file from an earlier export: write it again, once
    if worst < MIN_COSINE:
        decision = RuntimeDecision("torch", f"ONNX export disagrees with PyTorch (cosine {worst:.5f} < {MIN_COSINE})", key=key, mode=mode)
    else:
        with torch.inference_mode():
            torch_ms = _ms_per_image(cnn.forward_with_regions, x[:8])
        onnx_ms = _ms_per_image(onnx_model, x[:8].numpy())
        faster = onnx_ms < torch_ms
        runtime = "onnx" if (faster or mode == "onnx") else "torch"
        how = "set explicitly" if mode == "onnx" else ("auto: faster here" if faster else "auto: not faster here")
        decision = RuntimeDecision(runtime, f"{how} (ONNX Runtime {onnx_ms:.1f} ms/image vs PyTorch {torch_ms:.1f} ms/image)",
                                   round(torch_ms, 2), round(onnx_ms, 2), str(path), key, mode)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = decision_file.with_name(f".{DECISION_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(decision), indent=1))
    os.replace(tmp, decision_file)
    return decision, (onnx_model if decision.runtime == "onnx" else None)


def read_decision(cache_dir: Path) -> Optional[RuntimeDecision]:
    """The last runtime decision stored under `cache_dir`, if any (cheap: no model is loaded)."""
    try:
        return RuntimeDecision(**json.loads((Path(cache_dir) / "onnx" / DECISION_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
