"""llama.cpp (llama-cpp-python) loaded so that it runs on every x86 CPU, Sapphire Rapids included.

    from models.llama_runtime import prepare_llama
    prepare_llama()            # before the first Llama(...) / ChatLlamaCpp(...) of the process
    python -m models.llama_server --model M.gguf ...   # llama_cpp.server with the same fix

llama-cpp-python compiles llama.cpp for the CPU it is installed on. On a CPU with AMX (Intel Xeon 4th
generation and later) ggml then repacks the weights into an AMX buffer, and the first prompt of more
than one token crashes the process in `ggml_backend_amx_mul_mat` (a general protection fault; seen on
this project's CI machine with 0.3.36, and upstream in ggml-org/llama.cpp#20824, closed unfixed). The
weights in plain CPU buffers avoid that code: `use_extra_bufts = False` in the model parameters. It
also turns off the other repacking, which makes prompts a little slower, so it is done only where the
build reports AMX. PHOTOLORE_LLAMA_EXTRA_BUFFERS=on|off overrides the choice (auto by default).
"""
from __future__ import annotations

import os
import threading

_LOCK = threading.Lock()
_PREPARED: bool | None = None


def build_has_amx() -> bool:
    """Whether this llama.cpp build will put weights in an AMX buffer (its system info says AMX_INT8 = 1)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    info = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    return "AMX_INT8 = 1" in info


def extra_buffers_wanted() -> bool:
    choice = os.environ.get("PHOTOLORE_LLAMA_EXTRA_BUFFERS", "auto").strip().lower()
    if choice in ("on", "1", "true", "yes"):
        return True
    if choice in ("off", "0", "false", "no"):
        return False
    if choice != "auto":
        raise ValueError(f"PHOTOLORE_LLAMA_EXTRA_BUFFERS={choice!r}: use auto, on or off")
    return not build_has_amx()


def prepare_llama() -> bool:
    """Make every later llama.cpp model load of this process skip the extra (AMX, repack) buffers when
    that is needed; idempotent and thread-safe. Returns whether the extra buffers stay on."""
    global _PREPARED
    with _LOCK:
        if _PREPARED is not None:
            return _PREPARED
        import llama_cpp.llama_cpp as low

        keep = extra_buffers_wanted()
        if not keep:
            default_params = low.llama_model_default_params

            def without_extra_buffers():
                params = default_params()
                params.use_extra_bufts = False
                return params

            # llama_cpp.Llama reads the defaults through this module attribute each time it loads a model
            low.llama_model_default_params = without_extra_buffers
        _PREPARED = keep
        return keep
