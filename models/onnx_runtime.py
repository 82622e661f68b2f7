"""ONNX Runtime copies of the bundled models: exported once, checked, then loaded without torch.

Each model family (models/efficientnet_onnx.py, models/minilm_onnx.py) says how to export its
PyTorch model, run the export, and compare the two on a fixed sample; this file does the rest
the same way for both:
- the export lives in the data dir (`models/onnx/<stem>-<key>.onnx`), named by a hash of the
  packaged weights plus the torch, exporter and runtime versions, so new weights or libraries give
  a new file;
- it is written atomically and used only after its outputs matched PyTorch's (cosine >= 0.999);
  a manifest beside it (`.onnx.json`, written last) records its size and SHA-256, so a later
  process can trust the file without torch, and a partial or damaged file is detected, reported
  and exported again;
- `choose_runtime` times both runtimes on the sample and keeps the decision (with the timings)
  in `<family>-runtime.json`; `load_decided` reads it back torch-free. `python -m core status`
  reads the same files.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

# The export must reproduce PyTorch's outputs before it is ever used.
MIN_COSINE = 0.999


@dataclass
class RuntimeDecision:
    runtime: str  # "onnx" or "torch"
    reason: str
    torch_ms: Optional[float] = None  # per item (image or text) on the timing sample
    onnx_ms: Optional[float] = None
    onnx_path: Optional[str] = None
    key: str = ""  # weights + library versions the decision was measured with
    mode: str = "auto"  # what was asked for: "auto" or "onnx"
    unit: str = "image"


class OnnxFamily:
    """One model family's export and comparison; subclasses fill these in."""

    name = ""  # "image" or "text": names the decision file
    stem = ""  # file name stem of the export
    unit = "item"  # what ms are counted per, in reasons
    revision = "r1"  # bump when the exported graph changes, so older files are not reused
    packages: tuple[str, ...] = ("torch", "onnxruntime")

    def weights(self) -> Path:
        raise NotImplementedError

    def load_torch(self) -> Any:
        raise NotImplementedError

    def export(self, torch_model: Any, path: Path) -> None:
        """Write the ONNX graph of `torch_model` to `path` (a temporary name; the caller renames it)."""
        raise NotImplementedError

    def open(self, path: Path) -> Any:
        """The runner for an exported file (torch-free)."""
        raise NotImplementedError

    def sample(self) -> Any:
        """A fixed input on which PyTorch and the export are compared and timed."""
        raise NotImplementedError

    def run_torch(self, torch_model: Any, sample: Any) -> Sequence[np.ndarray]:
        raise NotImplementedError

    def run_onnx(self, runner: Any, sample: Any) -> Sequence[np.ndarray]:
        raise NotImplementedError

    def timing_sample(self, sample: Any) -> tuple[Any, int]:
        """(a smaller input for timing, how many items it holds)."""
        raise NotImplementedError


def cpu_threads() -> int:
    """Threads for an ONNX Runtime session: the cores this process may use (as torch would), at most
    the job's thread cap (core.threads: PHOTOLORE_THREADS, a Ray worker's CPUs)."""
    from core.threads import thread_limit

    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cores = max(1, os.cpu_count() or 1)
    cap = thread_limit()
    return min(cores, cap) if cap else cores


def session(path: Path, threads: Optional[int] = None):
    """An ONNX Runtime CPU session for an exported file."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # As many threads as cores and no spinning: on a small machine idle spinning threads steal the
    # cores that decoding, the detectors and the other model need.
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def family_key(family: OnnxFamily) -> str:
    """Weights hash + export revision + library versions, read from package metadata (no import)."""
    weights = family.weights()
    st = weights.stat()
    versions = "-".join(f"{p}{_version(p)}" for p in family.packages)
    return f"{_weights_hash(str(weights), st.st_size, st.st_mtime_ns)[:12]}-{family.revision}-{versions}".replace("+", "_")


@lru_cache(maxsize=8)
def _weights_hash(path: str, size: int, mtime_ns: int) -> str:
    # once per process and weights file (size and time in the key): hashing MiniLM's 90 MB takes a moment
    return file_sha256(Path(path))


def export_path(family: OnnxFamily, cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "onnx" / f"{family.stem}-{key}.onnx"


def _manifest(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_problem(path: Path, key: str) -> Optional[str]:
    """Why the export at `path` cannot be trusted without torch, or None when its manifest vouches for it."""
    if not path.is_file():
        return "not exported yet"
    try:
        manifest = json.loads(_manifest(path).read_text())
    except (OSError, ValueError):
        return "it has no manifest: the export never finished"
    if manifest.get("key") != key:
        return "its manifest names other weights or library versions"
    size = path.stat().st_size
    if size != manifest.get("size"):
        return f"it is {size} bytes, the manifest says {manifest.get('size')}: a partial or damaged file"
    if file_sha256(path) != manifest.get("sha256"):
        return "its checksum differs from the manifest's: a damaged file"
    return None


def export_checked(family: OnnxFamily, torch_model: Any, path: Path, key: str, sample: Any, expected: Sequence[np.ndarray]) -> tuple[Any, float]:
    """Export (atomically), open and compare with PyTorch's `expected` outputs; the manifest is written
    only when the export agrees. Returns (runner or None, worst cosine)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _manifest(path).unlink(missing_ok=True)  # from here on the file is unvouched until it is checked
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings():
            # the tracer's notes on shape checks it keeps as constants; the comparison below is what proves the export
            warnings.simplefilter("ignore")
            family.export(torch_model, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    runner, worst = _compare(family, path, sample, expected)
    if runner is not None and worst >= MIN_COSINE:
        _atomic_write_text(_manifest(path), json.dumps({"key": key, "size": path.stat().st_size, "sha256": file_sha256(path),
                                                        "worst_cosine": round(worst, 6)}, indent=1))
    return runner, worst


def _compare(family: OnnxFamily, path: Path, sample: Any, expected: Sequence[np.ndarray]) -> tuple[Any, float]:
    try:
        runner = family.open(path)
        got = family.run_onnx(runner, sample)
        return runner, min(float(_cosines(e, g).min()) for e, g in zip(expected, got))
    except Exception as exc:  # a damaged file (e.g. from a full disk) reads as a disagreement
        log.warning("%s: the ONNX export cannot be run (%s)", path, exc)
        return None, -1.0


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def _ms_per_item(fns: Sequence[Callable[[], Any]], n: int, repeats: int = 5) -> list[float]:
    """Best-of-`repeats` milliseconds per item of each function, timed in turns so that a change in
    the machine's load (other jobs on a small machine) hits all of them alike."""
    for fn in fns:
        fn()  # warm-up (first run allocates)
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return [1000.0 * b / n for b in best]


def decision_file(family: OnnxFamily, cache_dir: Path) -> Path:
    return Path(cache_dir) / "onnx" / f"{family.name}-runtime.json"


def read_decision(family: OnnxFamily, cache_dir: Path) -> Optional[RuntimeDecision]:
    """The last runtime decision stored under `cache_dir`, if any (cheap: no model is loaded)."""
    try:
        return RuntimeDecision(**json.loads(decision_file(family, cache_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def load_decided(family: OnnxFamily, cache_dir: Path, mode: str) -> Optional[tuple[RuntimeDecision, Any]]:
    """The stored decision and, for ONNX, its runner, without importing torch; None when it must be
    measured again (no decision, other weights or versions, or an export that fails its checks)."""
    cached = read_decision(family, cache_dir)
    if cached is None or cached.mode != mode:
        return None
    key = family_key(family)
    if cached.key != key:
        return None
    if cached.runtime == "torch":
        return cached, None
    path = export_path(family, cache_dir, key)
    if export_problem(path, key) is not None:
        return None  # choose_runtime says what is wrong with it and exports it again
    try:
        return cached, family.open(path)
    except Exception as exc:
        log.warning("%s: the ONNX export of the %s model does not open (%s); it is exported again", path, family.name, exc)
        return None


def choose_runtime(family: OnnxFamily, torch_model: Any, cache_dir: Path, *, mode: str = "auto") -> tuple[RuntimeDecision, Any]:
    """Export (once), check the export against PyTorch, and pick the faster runtime (`mode` auto),
    or use ONNX whenever it is correct (`mode` onnx). The decision is stored per weights+versions."""
    key = family_key(family)
    path = export_path(family, cache_dir, key)
    sample = family.sample()
    expected = family.run_torch(torch_model, sample)
    runner, worst = (None, -1.0)
    problem = export_problem(path, key)
    if problem is None:
        runner, worst = _compare(family, path, sample, expected)
    elif path.is_file():
        log.warning("%s: the ONNX export of the %s model cannot be used (%s); exporting it again from the packaged weights",
                    path, family.name, problem)
    if worst < MIN_COSINE:
        # missing, unvouched, damaged or stale: export again, once
        runner, worst = export_checked(family, torch_model, path, key, sample, expected)
    if worst < MIN_COSINE:
        decision = RuntimeDecision("torch", f"the ONNX export disagrees with PyTorch (cosine {worst:.5f} < {MIN_COSINE})",
                                   key=key, mode=mode, unit=family.unit)
    else:
        small, n = family.timing_sample(sample)
        torch_ms, onnx_ms = _ms_per_item([lambda: family.run_torch(torch_model, small), lambda: family.run_onnx(runner, small)], n)
        faster = onnx_ms < torch_ms
        runtime = "onnx" if (faster or mode == "onnx") else "torch"
        how = "set explicitly" if mode == "onnx" else ("auto: faster here" if faster else "auto: not faster here")
        decision = RuntimeDecision(runtime, f"{how} (ONNX Runtime {onnx_ms:.1f} ms/{family.unit} vs PyTorch {torch_ms:.1f} ms/{family.unit})",
                                   round(torch_ms, 2), round(onnx_ms, 2), str(path), key, mode, family.unit)
    _atomic_write_text(decision_file(family, cache_dir), json.dumps(asdict(decision), indent=1))
    return decision, (runner if decision.runtime == "onnx" else None)
