"""A real OpenAI-style chat-completions server on 127.0.0.1 whose replies a test scripts."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

GOOD = {"Safety": 4, "Belonging": 3, "Naturalness": 2, "Shared": 5, "Privacy": 1, "Convenience": 3,
        "concept_text": "a modern open space", "sentiment": "positive", "sentiment_score": 0.6, "topics": ["interior", "Food", "spaceships"]}


def completion(content: str) -> dict:
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


# A script: (request body, 1-based request number) -> (status, headers, body text, delay seconds)
Script = Callable[[dict, int], tuple[int, dict, str, float]]


def good_reply(body: dict, n: int):
    return 200, {}, json.dumps(completion(json.dumps(GOOD))), 0.0


class VlmServer:
    def __init__(self, script: Script = good_reply):
        self.script = script
        self.requests: list[dict] = []
        self.times: list[float] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer.lock:
                    outer.requests.append(body)
                    outer.times.append(time.monotonic())
                    outer.headers.append(dict(self.headers))
                    n = len(outer.requests)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    status, headers, text, delay = outer.script(body, n)
                    if delay:
                        outer.release.wait(delay)
                    data = text.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "VlmServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


