"""A deterministic stand-in for a capable research model, for pipeline tests.

It answers structured requests with JSON that fits the request's schema, shaped like a sensible
researcher would answer (a trial proposal gives the solver ten times the iterations, an ablation lowers a
knob to its lowest value), and plain-text requests with a paragraph that cites a listed paper, uses a
results macro, and also tries an invented citation and a typed number, which the paper's guards
must remove. It serves in-process (`ResearcherProvider`) or as an OpenAI-compatible HTTP server on
loopback (`ResearcherServer`), which records every request it answers.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nanoresearch.config import MODEL_ROLES
from nanoresearch.llm.provider import LLMRequest, LLMResponse

INVENTED_KEY = "invented2099"
TYPED_NUMBER = "99.7%"
ITERATIONS = "max_iter=MAX_ITER"  # the digits recipe's solver call: more iterations is a real improvement
KNOB_RANGE = re.compile(r"- (\w+): default ([\d.]+), lowest ([\d.]+)")
# Asked to write a task (no --task), the researcher writes the digits recipe of examples/tasks.
GENERATED_RECIPE = """import json
import os

from data import heldout_inputs, train_split
from sklearn.linear_model import LogisticRegression

MAX_ITER = int(float(os.environ.get("MAX_ITER", "10")))
SEED = int(os.environ.get("SEED", "0"))

x_train, y_train = train_split()
model = LogisticRegression(max_iter=MAX_ITER, random_state=SEED).fit(x_train / 16.0, y_train)
with open("predictions.json", "w") as out:
    json.dump({"predictions": [int(label) for label in model.predict(heldout_inputs() / 16.0)]}, out)
"""
# Asked to distil a skill, the researcher writes down the change that worked.
DISTILLED_SKILL = {"name": "more-solver-iterations", "description": "Give an iterative solver more iterations when it stops early",
                   "tags": ["optimisation", "convergence"], "stages": ["planning", "experiment"],
                   "procedure": "1. Find the solver's max_iter.\n2. Multiply it by ten.\n3. Keep it if the score rises."}
GENERATED_TASK = {"name": "digits-generated", "description": "Logistic regression on the bundled digits",
                  "knob": {"env": "MAX_ITER", "meaning": "solver iterations", "default": 10, "lowest": 3},
                  "recipe": GENERATED_RECIPE}


def answer(prompt: str, schema: dict | None) -> str:
    if schema is None:
        return prose(prompt)
    return json.dumps(Filler(schema, prompt).value(schema))


def prose(prompt: str) -> str:
    keys = re.findall(r'<paper key="([^"]+)">', prompt)
    macros = re.findall(r"^(\\[A-Za-z]+) = ", prompt, re.MULTILINE)
    cite = f"\\cite{{{keys[0]}}}" if keys else "earlier work"
    result = f" The proposed recipe reaches {macros[0]}." if macros else ""
    return (
        f"We build on {cite} and on \\cite{{{INVENTED_KEY}}}.{result} "
        f"Every run was perfect at {TYPED_NUMBER} accuracy. The method is simple and reproducible."
    )


class Filler:
    def __init__(self, root: dict, prompt: str) -> None:
        self.root, self.prompt = root, prompt

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            node: Any = self.root
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        for key in ("anyOf", "oneOf"):
            if key in schema:
                concrete = [s for s in schema[key] if self.resolve(s).get("type") != "null"]
                return self.resolve(concrete[0] if concrete else schema[key][0])
        if "allOf" in schema:
            return self.resolve(schema["allOf"][0])
        return schema

    def value(self, schema: dict, name: str = "") -> Any:
        schema = self.resolve(schema)
        if "enum" in schema:
            return self.choose(schema["enum"], name)
        if "const" in schema:
            return schema["const"]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            return self.obj(schema)
        if kind == "array":
            count = max(1, schema.get("minItems", 0))
            count = min(count, schema.get("maxItems", count))
            return [self.value(schema.get("items", {}), name) for _ in range(count)]
        if kind == "integer":
            low = schema.get("minimum", 1)
            return (low + schema.get("maximum", low + 4) + 1) // 2
        if kind == "number":
            return float(schema.get("minimum", 1.0))
        if kind == "boolean":
            return True
        return self.text(schema, name)

    def obj(self, schema: dict) -> dict:
        props = schema.get("properties", {})
        out = {key: self.value(sub, key) for key, sub in props.items()}
        if "find" in out and "replace" in out:  # a trial edit: ten times the solver's iterations
            out["replace"] = out["find"].replace(ITERATIONS, f"{ITERATIONS} * 10")
        if "edits" in out and "settings" in out:  # it proposes by editing the code, whatever values it may name
            out["settings"] = []
        if "recipe" in out:
            out.update(GENERATED_TASK)
        if "procedure" in out:
            out.update(DISTILLED_SKILL)
        if "knob" in out and "value" in out:  # a knob ablation: the knob's lowest value
            lows = {name: float(low) for name, _, low in KNOB_RANGE.findall(self.prompt)}
            out["value"] = lows.get(out["knob"], out["value"])
            out["description"] = f"{out['knob']} lowered to {out['value']:g}"
        return out

    def choose(self, options: list, name: str) -> Any:
        if name == "find":
            return next((o for o in options if isinstance(o, str) and ITERATIONS in o), options[0])
        if name == "revise":
            return "abstract" if "abstract" in options else options[0]
        if name == "type" and "lesson" in options:  # a memory note (preferences are the user's to state)
            return "lesson"
        return options[0]

    def text(self, schema: dict, name: str) -> str:
        if name == "find":  # a server gets no enum of code lines: copy the line from the prompt's listing
            listed = [line for line in self.prompt.splitlines() if ITERATIONS in line]
            if listed:
                return re.sub(r"^\s*\d+  ", "", listed[0])
        if name == "quote":  # evidence: the opening words of the first quoted paper's abstract, verbatim
            quoted = re.search(r'<paper key="[^"]+">\n[^\n]*\n([^\n]+)', self.prompt)
            if quoted:
                return " ".join(quoted.group(1).split()[:10])
        words = {
            "hypothesis": "Training the solver for more iterations improves held-out accuracy",
            "statement": "More solver iterations let logistic regression converge and classify digits better",
            "claim": "Gradient-based learning recognises handwritten digits well",
            "change": "raise max_iter in train.py so the solver converges",
            "strengths": "The method section states the recipe change and its test clearly",
            "weaknesses": "The experiments section reports a single dataset and few seeds",
            "queries": "handwritten digit classification",
        }
        base = words.get(name, f"A careful {name or 'answer'} about the research goal")
        low, high = schema.get("minLength", 0), schema.get("maxLength", 200)
        return (base + " " * max(0, low - len(base)))[:high]


def request_key(messages: list[dict], schema: dict | None) -> str:
    return hashlib.sha256(json.dumps([messages, schema], sort_keys=True).encode()).hexdigest()


class ResearcherProvider:
    """In-process: `LLM(..., providers={"local": ResearcherProvider()})`."""

    def __init__(self, name: str = "local") -> None:
        self.name = name
        self.requests: list[LLMRequest] = []

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        prompt = "\n".join(m.content for m in request.messages)
        text = answer(prompt, request.json_schema)
        return LLMResponse(text=text, finish_reason="stop", prompt_tokens=len(prompt) // 4, completion_tokens=len(text) // 4)


class ResearcherServer:
    """OpenAI-compatible chat completions on 127.0.0.1, answering like `answer()`; counts requests by
    content, and the calls and tokens it served (the ground truth a budget test checks the ledger against)."""

    # port 0: any free port; a given one brings a stopped server back. honor_max_tokens: answer at most
    # max_tokens, as a real server does (the budget tests); otherwise the whole answer, always.
    def __init__(self, port: int = 0, honor_max_tokens: bool = False) -> None:
        self.seen: dict[str, int] = {}
        self.calls = 0
        self.tokens_served = 0
        self.honor_max_tokens = honor_max_tokens
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ResearcherServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fmt = body.get("response_format") or {}
                schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
                messages = body.get("messages", [])
                with server._lock:
                    key = request_key(messages, schema)
                    server.seen[key] = server.seen.get(key, 0) + 1
                prompt = "\n".join(str(m.get("content", "")) for m in messages)
                text = answer(prompt, schema)
                limit = body.get("max_tokens") if server.honor_max_tokens else None
                finish = "length" if limit is not None and len(text) // 4 > limit else "stop"
                text = text if limit is None else text[: limit * 4]
                used = {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(text) // 4}
                with server._lock:
                    server.calls += 1
                    server.tokens_served += used["prompt_tokens"] + used["completion_tokens"]
                reply = {
                    "id": "chatcmpl-researcher", "object": "chat.completion", "created": 0, "model": body.get("model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                    "usage": {**used, "total_tokens": used["prompt_tokens"] + used["completion_tokens"]},
                }
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def write_config(home: Path, url: str) -> None:
    """Every stage's model is the researcher at `url`; an unreachable one is given up on at once."""
    lines = [
        "[llm]", "max_attempts = 2", "backoff_initial_s = 0", "",
        "[endpoints.researcher]", 'kind = "openai"', f'base_url = "{url}"', 'default_model = "researcher"',
        'structured = "json_schema"', "",
    ]
    for stage in MODEL_ROLES:
        lines += [f"[stages.{stage}]", 'endpoint = "researcher"', 'model = "researcher"', ""]
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines))


def unused_port() -> int:
    """A loopback port nobody listens on (until a ResearcherServer is started on it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
