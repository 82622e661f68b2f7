"""`python -m core chat`: ask the library a question (or several, interactively) from the terminal."""
from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    """Add the `chat` command group to `python -m core`."""
    p = subparsers.add_parser("chat", help="ask questions about the library (LLM set by PHOTOLORE_LLM_*; default: packaged SmolLM2)")
    p.add_argument("question", nargs="*", help="the question; none = interactive session (empty line or Ctrl-D ends it)")
    p.add_argument("-k", type=int, default=6, help="photos shown per answer")
    p.add_argument("--no-llm", action="store_true", help="answer from the index alone, without a language model")
    p.add_argument("--json", action="store_true", help="print each answer as JSON instead of streaming text")
    p.set_defaults(func=cmd_chat)


def cmd_chat(args) -> int:
    from core.chat.chain import ChatConfig, stream_reply
    from core.pathnames import display_path
    from core.chat.llm import LLMSettings, LLMUnavailable, build_llm
    from core.services import build_services

    services = build_services()
    llm = None
    if not args.no_llm:
        cfg_llm = LLMSettings()
        try:
            llm = build_llm(cfg_llm)
            print(f"LLM: {llm.label}", file=sys.stderr)
        except LLMUnavailable as exc:
            print(f"LLM unavailable, answering from the index alone: {exc}", file=sys.stderr)
    cfg = ChatConfig(k=args.k, timeout_s=LLMSettings().llm_timeout)
    history: list[dict] = []
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
            print(json.dumps({"question": question, "answer": result.text, "count": result.count, "filters": result.filters,
                              "photos": [{"id": p.id, "path": display_path(p.path), "caption": p.caption} for p in result.photos],
                              "dropped": result.dropped, "llm_error": result.llm_error}, indent=1))
        else:
            print()
            for i, p in enumerate(result.photos, start=1):
                print(f"  [{i}] {display_path(p.path)}  ({p.caption or ''})")
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": result.text}]
