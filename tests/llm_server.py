"""A local model server for tests: OpenAI chat completions and Anthropic messages over
real HTTP on a free loopback port.

It records every request (path, headers, JSON body), answers with canned text and
usage figures (tokens = words), and can be told to fail the next requests with a status
code and a Retry-After header. A request with `"stream": true` is answered with Server-
Sent Events, one word per chunk, `token_delay` seconds apart; `sent` keeps when each
chunk left (time.time()) and `finished` when each streamed response ended.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Failure:
    status: int
    message: str
    retry_after: str | None = None


@dataclass
class LLMServer:
    """Start with `start()`, stop with `stop()`; `base_url` is the OpenAI-style API root."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: deque[str] = field(default_factory=deque)
    failures: deque[Failure] = field(default_factory=deque)
    token_delay: float = 0.0
    sent: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def root(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    def reply(self, *texts: str) -> None:
        """Answer the next requests with these texts (then echo the prompt again)."""
        self.replies.extend(texts)

    def fail(
        self,
        status: int,
        message: str = "slow down",
        *,
        times: int = 1,
        retry_after: str | None = None,
    ) -> None:
        for _ in range(times):
            self.failures.append(Failure(status, message, retry_after))

    def start(self) -> LLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(
                        {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                    )
                    failure = server.failures.popleft() if server.failures else None
                    canned = None
                    if failure is None and server.replies:
                        canned = server.replies.popleft()
                if failure is not None:
                    headers = {"retry-after": failure.retry_after} if failure.retry_after else {}
                    self._send(failure.status, {"error": {"message": failure.message}}, headers)
                    return
                if body.get("stream"):
                    self._stream(body, canned)
                elif self.path.endswith("/messages"):
                    self._anthropic(body, canned)
                elif self.path.endswith("/chat/completions"):
                    self._openai(body, canned)
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _openai(self, body: dict[str, Any], canned: str | None) -> None:
                prompt = body["messages"][-1]["content"]
                text = canned if canned is not None else f"echo: {prompt}"
                words_in = sum(len(str(m["content"]).split()) for m in body["messages"])
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": words_in,
                            "completion_tokens": len(text.split()),
                            "total_tokens": words_in + len(text.split()),
                        },
                    },
                )

            def _anthropic(self, body: dict[str, Any], canned: str | None) -> None:
                if "max_tokens" not in body:
                    self._send(
                        400,
                        {
                            "type": "error",
                            "error": {
                                "type": "invalid_request_error",
                                "message": "max_tokens: Field required",
                            },
                        },
                    )
                    return
                prompt = body["messages"][-1]["content"]
                text = canned if canned is not None else f"echo: {prompt}"
                words_in = len(str(prompt).split()) + len(str(body.get("system", "")).split())
                self._send(
                    200,
                    {
                        "id": "msg_test",
                        "type": "message",
                        "role": "assistant",
                        "model": body["model"],
                        "content": [{"type": "text", "text": text}],
                        "stop_reason": "end_turn",
                        "usage": {"input_tokens": words_in, "output_tokens": len(text.split())},
                    },
                )

            def _stream(self, body: dict[str, Any], canned: str | None) -> None:
                prompt = body["messages"][-1]["content"]
                text = canned if canned is not None else f"echo: {prompt}"
                words = text.split(" ")
                anthropic = self.path.endswith("/messages")
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                frames: list[dict[str, Any]] = []
                if anthropic:
                    frames.append(
                        {"type": "message_start", "message": {"usage": {"input_tokens": 3}}}
                    )
                for i, word in enumerate(words):
                    piece = word if i == 0 else " " + word
                    frames.append(
                        {
                            "type": "content_block_delta",
                            "delta": {"type": "text_delta", "text": piece},
                        }
                        if anthropic
                        else {"choices": [{"index": 0, "delta": {"content": piece}}]}
                    )
                frames.append(
                    {"type": "message_delta", "usage": {"output_tokens": len(words)}}
                    if anthropic
                    else {
                        "choices": [],
                        "usage": {"prompt_tokens": 3, "completion_tokens": len(words)},
                    }
                )
                for frame in frames:
                    time.sleep(server.token_delay)
                    self.wfile.write(f"data: {json.dumps(frame)}\n\n".encode())
                    self.wfile.flush()
                    server.sent.append(time.time())
                if not anthropic:
                    self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                server.finished.append(time.time())
                self.close_connection = True

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def prompts(self) -> list[str]:
        return [r["body"]["messages"][-1]["content"] for r in self.requests]
