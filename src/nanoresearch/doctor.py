"""`nanoresearch doctor`: what this machine can do for NanoResearch, checked for real.

Each check says what it found and, when something is missing, the command that fixes it. Checks
marked required decide the exit code; the rest describe optional capabilities (SLURM, LaTeX …).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

from pydantic import BaseModel

from nanoresearch.config import MODEL_ROLES, Settings
from nanoresearch.errors import NanoResearchError
from nanoresearch.llm.provider import is_loopback_url
from nanoresearch.llm.sizes import SMALL_MODEL_B, model_size_b

APT = "apt-get install -y --no-install-recommends"
PLANNER = "planner"  # the one model role that plans stages rather than doing research
REAL_WORK = (
    "for real research give the stages a stronger model: an API key (export OPENAI_API_KEY=..., then "
    "[stages.<stage>] endpoint = \"openai\" in config.toml), a local GGUF of about 1.5B parameters or more "
    "([local] model = \"/path/model.gguf\"), or a local OpenAI-compatible server such as llama.cpp, vLLM or "
    "Ollama ([endpoints.<name>] kind = \"openai\", base_url = \"http://127.0.0.1:8080/v1\")"
)


class Check(BaseModel):
    name: str
    ok: bool
    required: bool = False
    detail: str = ""
    hint: str = ""


def run_checks(settings: Settings, load_model: bool = True) -> list[Check]:
    checks: list[Callable[[], Check]] = [
        check_python,
        lambda: check_store(settings),
        check_local_extra,
        lambda: check_local_model(settings, load_model),
        *(partial(model_check, note) for note in model_notes(settings)),
        lambda: check_tool("pdflatex", "LaTeX (papers)", f"{APT} texlive-latex-recommended texlive-latex-extra lmodern"),
        lambda: check_tool("latexmk", "latexmk (paper builds)", f"{APT} latexmk"),
        lambda: check_tool("bibtex", "BibTeX", f"{APT} texlive-latex-recommended"),
        check_bubblewrap,
        check_slurm,
        lambda: check_module("ray", "Ray executor", "pip install 'nanoresearch[ray]'"),
        lambda: check_module("llama_cpp", "llama.cpp (fast local engine)", "pip install 'nanoresearch[fast]'"),
    ]
    results = [_safely(check) for check in checks]
    results += [_safely(partial(check_endpoint, settings, name)) for name in sorted(settings.endpoints)
                if settings.endpoints[name].kind in ("openai", "anthropic")]  # the kinds it knows how to probe
    return results


def healthy(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


def _safely(check: Callable[[], Check]) -> Check:
    try:
        return check()
    except NanoResearchError as exc:
        return Check(name="(check)", ok=False, detail=exc.message, hint=exc.hint or "")


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    return Check(name="python", ok=sys.version_info >= (3, 11), required=True, detail=version,
                 hint="NanoResearch needs Python 3.11 or newer")


def check_store(settings: Settings) -> Check:
    from nanoresearch.store import Store

    try:
        with Store(settings.db_path) as store:
            store.ensure_user(settings.user)
            version = store.schema_version()
    except NanoResearchError as exc:
        return Check(name="store", ok=False, required=True, detail=exc.message, hint=exc.hint or "")
    return Check(name="store", ok=True, required=True, detail=f"{settings.db_path} (schema {version}, writable)")


def check_local_extra() -> Check:
    missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
    if missing:
        return Check(name="local model libraries", ok=False, detail=f"missing: {', '.join(missing)}",
                     hint="pip install torch==2.13.0 'nanoresearch[local]'")
    import torch
    import transformers

    return Check(name="local model libraries", ok=True,
                 detail=f"torch {torch.__version__}, transformers {transformers.__version__}")


def check_local_model(settings: Settings, load: bool) -> Check:
    from nanoresearch.llm.local import load_model
    from nanoresearch.llm.local_model import resolve_source

    local_stages = _local_stage_models(settings)
    model = local_stages[0] if local_stages else (settings.endpoints["local"].default_model or "")
    name = f"local model ({model})"
    required = bool(local_stages)
    try:
        source = resolve_source(model)
        if not load:
            return Check(name=name, ok=True, required=required, detail=f"found in {source.folder} (not loaded)")
        started = time.perf_counter()
        lm = load_model(model, settings.cache_dir, settings.local.threads, settings.local.engine)
        seconds = time.perf_counter() - started
    except NanoResearchError as exc:
        return Check(name=name, ok=False, required=required, detail=exc.message, hint=exc.hint or "")
    return Check(name=name, ok=True, required=required, detail=f"loaded on the {lm.engine} engine in {seconds:.1f} s")


def _local_stage_models(settings: Settings) -> list[str]:
    stages = [settings.stage(name) for name in MODEL_ROLES]
    return [s.model for s in stages if s.endpoint in settings.endpoints and settings.endpoints[s.endpoint].kind == "local"]


class ModelNote(BaseModel):
    """What one configured model is good for, for `doctor` and the start of every run."""

    endpoint: str
    model: str
    stages: list[str]
    demo_only: bool  # it can show the pipeline's mechanics, not do research
    good_for: str

    def line(self) -> str:
        return f"{self.endpoint}/{self.model} for {', '.join(self.stages)}: {self.good_for}"


def model_notes(settings: Settings) -> list[ModelNote]:
    """One note per configured endpoint and model, with the stages that use it."""
    stages: dict[tuple[str, str], list[str]] = {}
    for role in MODEL_ROLES:
        stage = settings.stage(role)
        stages.setdefault((stage.endpoint, stage.model), []).append(role)
    return [_model_note(settings, endpoint, model, roles) for (endpoint, model), roles in stages.items()]


def _model_note(settings: Settings, endpoint: str, model: str, roles: list[str]) -> ModelNote:
    from nanoresearch.llm.local_model import DEFAULT_MODEL

    configured = settings.endpoints.get(endpoint)
    kind = configured.kind if configured else "unknown"
    size = model_size_b(model)
    small = size is not None and size < SMALL_MODEL_B
    if kind == "local" and model in ("", DEFAULT_MODEL):
        good_for, demo = ("the embedded SmolLM2-135M: demonstrates the mechanics, every stage end to end; its "
                          "hypotheses, claims and reviews are mostly degenerate, and the run labels them so"), True
    elif kind == "local":
        good_for, demo = (f"a local model ({_size_text(size)}): " + (
            "demonstrates the mechanics; expect degenerate output, which the run labels" if small
            else "can make trial edits and ground claims from about 1.5B parameters; degenerate.json says what it got wrong")), small
    elif configured is not None and is_loopback_url(configured.base_url):
        good_for, demo = (f"a server on this machine ({_size_text(size)}): as good as the model it serves; "
                          "about 1.5B parameters and up do real work"), small
    elif configured is not None and configured.api_key_env and not os.environ.get(configured.api_key_env):
        good_for, demo = f"an API model, not usable yet: {configured.api_key_env} is not set", False
    else:
        good_for, demo = "an API model: suited to real research", small
    return ModelNote(endpoint=endpoint, model=model, stages=roles, demo_only=demo, good_for=good_for)


def _size_text(size: float | None) -> str:
    return "size not in its name" if size is None else f"about {size:g}B parameters"


def model_check(note: ModelNote) -> Check:
    return Check(name=f"model for {', '.join(note.stages)}", ok=not note.demo_only,
                 detail=f"{note.endpoint}/{note.model}: {note.good_for}", hint=REAL_WORK if note.demo_only else "")


def run_start_lines(settings: Settings) -> list[str]:
    """What the start of a run says about its models: each one's use, and plainly when it is a demonstration.

    Only a small model on a research stage makes the run a demonstration; a small planner just writes
    weak stage plans, which is said as such."""
    notes = model_notes(settings)
    lines = [f"model {note.line()}" for note in notes]
    demo_stages = {stage for note in notes if note.demo_only for stage in note.stages}
    if demo_stages - {PLANNER}:
        lines.append("this run demonstrates the mechanics: its ideas, claims and review will not be real research; "
                     + REAL_WORK + " (`nanoresearch doctor` lists the models)")
    elif PLANNER in demo_stages:
        planner = next(note for note in notes if PLANNER in note.stages)
        lines.append(f"the planner ({planner.endpoint}/{planner.model}) is a small model: its stage plans only guide "
                     "the stages (objectives in their prompts, a share of the budget) and are often degenerate, which "
                     "the run labels; your feedback on the stages trains its adapter (docs/co-evolution.md)")
    return lines


def check_tool(command: str, label: str, hint: str) -> Check:
    path = shutil.which(command)
    if path is None:
        return Check(name=label, ok=False, detail=f"{command} not found", hint=hint)
    return Check(name=label, ok=True, detail=_first_line([command, "--version"]) or path)


def check_bubblewrap() -> Check:
    from nanoresearch.compute.sandbox import sandbox_status

    status = sandbox_status()
    name = "sandbox (bubblewrap)"
    if not status.sandboxed:
        return Check(name=name, ok=False, detail=f"{status.problem}; generated code would run with {status.isolation} only",
                     hint=f"{APT} bubblewrap")
    return Check(name=name, ok=True, detail=status.isolation)


def check_slurm() -> Check:
    name = "SLURM"
    missing = [c for c in ("sbatch", "squeue", "scontrol", "sacct") if shutil.which(c) is None]
    if missing:
        return Check(name=name, ok=False, detail=f"missing: {', '.join(missing)}", hint=f"{APT} slurm-wlm munge")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return Check(name=name, ok=False, detail="commands installed, but no slurmctld answers",
                     hint="for a one-machine cluster: scripts/slurm-local.sh start, then eval \"$(scripts/slurm-local.sh env)\"")
    return Check(name=name, ok=True, detail=ping.stdout.strip().splitlines()[0])


def check_module(module: str, label: str, hint: str) -> Check:
    if importlib.util.find_spec(module) is None:
        return Check(name=label, ok=False, detail=f"python package {module} not installed", hint=hint)
    return Check(name=label, ok=True, detail="installed")


def check_endpoint(settings: Settings, name: str) -> Check:
    """Reports whether an API endpoint is usable: key present, server answering."""
    import httpx

    endpoint = settings.endpoints[name]
    label = f"endpoint {name} ({endpoint.kind})"
    sdk = "openai" if endpoint.kind == "openai" else "anthropic"
    if importlib.util.find_spec(sdk) is None:
        return Check(name=label, ok=False, detail=f"the {sdk} SDK is not installed", hint=f"pip install 'nanoresearch[{sdk}]'")
    key = os.environ.get(endpoint.api_key_env or "", "")
    if not key and not is_loopback_url(endpoint.base_url):
        return Check(name=label, ok=False, detail=f"not configured: {endpoint.api_key_env} is not set",
                     hint=f"export {endpoint.api_key_env}=... to use {endpoint.base_url}")
    url = (endpoint.base_url or "").rstrip("/") + ("/models" if endpoint.kind == "openai" else "/v1/models")
    headers = {"Authorization": f"Bearer {key}"} if endpoint.kind == "openai" else {"x-api-key": key, "anthropic-version": "2023-06-01"}
    try:
        status = httpx.get(url, headers=headers, timeout=5).status_code
    except httpx.HTTPError as exc:
        return Check(name=label, ok=False, detail=f"{endpoint.base_url} unreachable: {type(exc).__name__}",
                     hint="check the network or the endpoint's base_url")
    if status in (401, 403):
        return Check(name=label, ok=False, detail=f"{endpoint.base_url} refused the key (HTTP {status})",
                     hint=f"check {endpoint.api_key_env}")
    return Check(name=label, ok=status < 500, detail=f"{endpoint.base_url} answers (HTTP {status})")


def _first_line(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0][:100] if (out.stdout or out.stderr).strip() else ""
