"""llama.cpp's OpenAI-compatible server (llama_cpp.server) with the AMX fix of models.llama_runtime.

    python -m models.llama_server --model M.gguf --model_alias NAME --host 127.0.0.1 --port 8080

Takes exactly llama_cpp.server's arguments; use it instead of `python -m llama_cpp.server` on machines
whose CPU has AMX, where the plain server crashes on its first request.
"""
from __future__ import annotations

import runpy
import sys

from models.llama_runtime import prepare_llama


def main() -> None:
    prepare_llama()
    sys.argv[0] = "llama_cpp.server"
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
