"""`python -m core chat`: ask the library a question (or several, interactively) from the terminal."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add the `chat` command group to `python -m core`."""
    p = subparsers.add_parser("chat", help="ask questions about the library (LLM set by PHOTOLORE_LLM_*; default: packaged SmolLM2)")
    p.add_argument("question", nargs="*", help="the question; none = interactive session (empty line or Ctrl-D ends it)")
    p.add_argument("-k", type=int, default=6, help="photos shown per answer")
    p.add_argument("--no-llm", action="store_true", help="answer from the index alone, without a language model")
    p.add_argument("--json", action="store_true", help="print each answer as JSON instead of streaming text")
    p.add_argument("--history", type=Path, default=None, metavar="FILE",
                   help="a JSON file keeping the conversation across runs, so follow-ups work "
                        "('and which of those are positive?'); created if missing")
    p.set_defaults(func=cmd_chat)


def cmd_chat(args) -> int:
    from core.chat.chain import ChatConfig
    from core.chat.reply import stream_reply
    from core.pathnames import display_path
    from core.chat.llm import LLMSettings, LLMUnavailable, build_llm
    from core.services import build_services

    services = build_services()
    llm = None
    llm_cfg = LLMSettings()
    if not args.no_llm:
        try:
            llm = build_llm(llm_cfg)
            print(f"LLM: {llm.label}", file=sys.stderr)
        except LLMUnavailable as exc:
            print(f"LLM unavailable, answering from the index alone: {exc}", file=sys.stderr)
    cfg = ChatConfig(k=args.k, timeout_s=llm_cfg.llm_timeout, budget_s=llm_cfg.llm_budget)
    history: list[dict] = _load_history(args.history) if args.history else []
    questions = [" ".join(args.question)] if args.question else None
    while True:
        if questions is not None:
            if not questions:
                return 0
            question = questions.pop(0)
        else:
            try:
                question = input("you> ").strip()
            except EOFError:
                return 0
            if not question:
                return 0
        try:
            gen = stream_reply(question, history, services, llm, cfg=cfg)
            while True:
                try:
                    chunk = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                if not args.json:
                    print(chunk, end="", flush=True)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps({"question": question, **result.to_json()}, indent=1))
        else:
            print()
            for i, p in enumerate(result.photos, start=1):
                print(f"  [{i}] {display_path(p.path)}  ({p.caption or ''})")
        history += [{"role": "user", "content": question}, result.history_entry()]
        if args.history:
            _save_history(args.history, history)


def _load_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: --history {path} is not a chat history JSON file ({exc}); give a new file name or delete it")
    if not isinstance(data, list) or not all(isinstance(h, dict) for h in data):
        raise SystemExit(f"error: --history {path} is not a list of chat turns; give a new file name or delete it")
    return data


def _save_history(path: Path, history: list[dict]) -> None:
    """Atomic: a killed run leaves the previous history whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(history[-40:], ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
