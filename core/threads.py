"""The one place that caps how many threads this process's compute libraries run.

A photo job touches many thread pools: PyTorch (intra- and inter-op), the OpenMP and BLAS
runtimes under numpy and scikit-learn, ONNX Runtime (the image model and RapidOCR's sessions,
which default to one thread per core each), OpenCV, and PhotoLore's own decode pool. Left
alone, each sizes itself to the machine, so a job meant to use one core (a Ray actor given one
CPU, `PHOTOLORE_THREADS=1`) quietly uses several, and two such jobs fight over the cores.

`limit_threads(n)` caps every one of them at `n` for the rest of the process; the places that
build a pool ask `thread_limit()`. Unset (the default) changes nothing: libraries keep their own
defaults. It is applied where the models are built (models.registry.create_backend), so a local
run and each Ray actor (which sets it to its CPUs) go through the same code.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

# Read by the OpenMP/BLAS runtimes and OpenCV when they load; ones already loaded are set below.
ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
            "OPENCV_FOR_THREADS_NUM")

# Process-wide, like the pools it stands for (torch's own thread count is a process global too).
_limit: Optional[int] = None


def thread_limit() -> Optional[int]:
    """The cap set by `limit_threads`, or None when the libraries keep their defaults."""
    return _limit


def limit_threads(n: Optional[int]) -> None:
    """Cap every compute thread pool of this process at `n` threads; None leaves them as they are."""
    global _limit
    if n is None:
        return
    if n < 1:
        raise ValueError(f"thread limit {n}: must be at least 1 (PHOTOLORE_THREADS), or unset for the libraries' defaults")
    _limit = n
    for var in ENV_VARS:
        os.environ[var] = str(n)
    try:  # OpenMP/BLAS runtimes that numpy, torch or scikit-learn loaded already
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # comes with scikit-learn; without it the variables above still reach later loads
        pass
    # Not imported just for this (an ONNX ingest never loads torch): a later import sizes its
    # intra-op pool from OMP_NUM_THREADS, set above.
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # allowed once, before any inter-op work; a second call keeps the first setting
            pass
    if "cv2" in sys.modules:  # not imported just for this: a later import reads OPENCV_FOR_THREADS_NUM
        sys.modules["cv2"].setNumThreads(n)


def decode_threads(decode_workers: int) -> int:
    """Threads of the ingest decode pool: `decode_workers`, or under a cap of n the n - 1 threads left
    beside the thread that embeds (0: decode on that thread, so a one-thread job is one thread)."""
    return decode_workers if _limit is None else min(decode_workers, _limit - 1)
