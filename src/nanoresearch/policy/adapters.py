"""Per-user LoRA adapters for the planner: versions, the active pointer, and the planner model.

Layout, under the user's folder (`<home>/users/<user>/policy/`):

    versions/v1/adapter_config.json, adapter_model.safetensors   peft's files (the adapter only)
    versions/v1/version.json    VersionMeta: parent, base model and its fingerprint, LoRA shape,
                                the settings used, the feedback trained on, kept or rolled back
    versions/v1/metrics.json    UpdateMetrics (checks.py): gap, probe margins, drift, before/after
    active                      "v3", or "base" (no adapter); absent means base
    buffer.json                 the replay buffer (triples.py)
    .lock                       held while a round trains, so two rounds never race

Only the base weights are shared between users; every adapter is read from its own user's folder,
and the planner model with an adapter is its own copy of the base, so loading (or training) one
user's planner never touches another's files or the base model other stages use.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from nanoresearch.config import Settings
from nanoresearch.errors import LLMError, UserError
from nanoresearch.llm.local import load_model
from nanoresearch.llm.local_model import LoadedModel, converted_folder, resolve_source
from nanoresearch.policy.metrics import UpdateMetrics

log = logging.getLogger(__name__)

FORMAT = 1
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
PLANNERS_KEPT = 2  # planner copies (base + adapter) kept loaded per process


class AdapterError(UserError):
    """A stored adapter is missing, corrupt or made for another base model."""


class LoraShape(BaseModel):
    r: int
    alpha: int
    targets: list[str]


class VersionMeta(BaseModel):
    format: int = FORMAT
    version: int
    parent: int | None = None
    created_at: str
    base_model: str  # the planner's model setting, e.g. "smollm2-135m"
    base_fingerprint: str  # hash of the base's config.json: a different architecture is refused
    lora: LoraShape
    policy: dict[str, Any] = {}  # the [policy] settings this round ran with
    trained: list[int] = []  # feedback ids of the new triples
    replayed: list[int] = []  # feedback ids replayed from the buffer
    status: Literal["kept", "rolled_back"] = "kept"
    note: str = ""


@dataclass(frozen=True)
class PolicyPaths:
    root: Path

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def active(self) -> Path:
        return self.root / "active"

    @property
    def buffer(self) -> Path:
        return self.root / "buffer.json"

    def version(self, number: int) -> Path:
        return self.versions / f"v{number}"


def policy_paths(settings: Settings, user: str | None = None) -> PolicyPaths:
    return PolicyPaths(settings.home / "users" / (user or settings.user) / "policy")


# the base model


@dataclass(frozen=True)
class PlannerBase:
    spec: str  # the model setting
    folder: Path  # an HF folder (GGUF models are de-quantized into the cache once)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256((self.folder / "config.json").read_bytes()).hexdigest()[:16]


def planner_base(settings: Settings) -> PlannerBase:
    stage = settings.stage("planner")
    endpoint = settings.endpoint(stage.endpoint)
    if endpoint.kind != "local":
        raise UserError(
            f"the planner runs on endpoint {stage.endpoint!r} ({endpoint.kind}); only a local planner has weights to train",
            hint="set [stages.planner] endpoint = \"local\" (model: smollm2-135m, a .gguf path or an HF folder)",
        )
    source = resolve_source(stage.model)
    folder = converted_folder(source, settings.cache_dir) if source.gguf_file else source.folder
    return PlannerBase(stage.model, folder)


def fresh_base(base: PlannerBase) -> LoadedModel:
    """A private copy of the base model: LoRA layers go into it, never into the shared one."""
    from nanoresearch.llm.local_model import load_hf_folder

    return load_hf_folder(base.folder)


# versions and the active pointer


def version_numbers(paths: PolicyPaths) -> list[int]:
    if not paths.versions.is_dir():
        return []
    names = (p.name for p in paths.versions.iterdir() if p.is_dir())
    return sorted(int(n[1:]) for n in names if n.startswith("v") and n[1:].isdigit())


def parse_version(text: str) -> int:
    digits = text.strip().lower().removeprefix("v")
    if not digits.isdigit():
        raise UserError(f"{text!r} is not a version", hint="versions look like v3 or 3; see `nanoresearch policy history`")
    return int(digits)


def active_version(paths: PolicyPaths) -> int | None:
    """The version the planner uses, or None for the base model."""
    if not paths.active.exists():
        return None
    text = paths.active.read_text(encoding="utf-8").strip()
    return None if text in ("", "base") else parse_version(text)


def set_active(paths: PolicyPaths, version: int | None) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    _write_atomic(paths.active, "base" if version is None else f"v{version}")


def _write_atomic(path: Path, text: str) -> None:
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text + "\n")
    os.replace(staging, path)


def read_meta(paths: PolicyPaths, version: int) -> VersionMeta:
    path = paths.version(version) / "version.json"
    try:
        return VersionMeta.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AdapterError(f"adapter v{version} does not exist", hint="see `nanoresearch policy history`") from None
    except (OSError, ValueError, ValidationError) as exc:
        raise AdapterError(f"adapter v{version}: {path} is unreadable ({str(exc).splitlines()[0]})") from None


def read_metrics(paths: PolicyPaths, version: int) -> UpdateMetrics | None:
    """The figures measured for `version` (gap, probe margins, drift), or None when missing or unreadable."""
    try:
        return UpdateMetrics.model_validate_json((paths.version(version) / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

def check_version(paths: PolicyPaths, version: int, base: PlannerBase) -> VersionMeta:
    """The version's metadata, if its files are all there and it was made for this base model."""
    meta = read_meta(paths, version)
    missing = [name for name in ADAPTER_FILES if not (paths.version(version) / name).is_file()]
    if missing:
        raise AdapterError(f"adapter v{version} is missing {', '.join(missing)}", hint=_FIX)
    if meta.format > FORMAT:
        raise AdapterError(f"adapter v{version} was written by a newer NanoResearch (format {meta.format})", hint=_FIX)
    if meta.base_fingerprint != base.fingerprint:
        raise AdapterError(
            f"adapter v{version} was trained on {meta.base_model!r} ({meta.base_fingerprint}), "
            f"but the planner is now {base.spec!r} ({base.fingerprint})",
            hint=_FIX,
        )
    return meta


_FIX = "roll back to another version (`nanoresearch policy rollback VERSION`) or start over (`nanoresearch policy reset`)"


def attach_adapter(model: Any, folder: Path, trainable: bool = False) -> Any:
    """`model` with the adapter in `folder` applied (a peft model); file errors become AdapterError."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, folder, is_trainable=trainable)
    except Exception as exc:  # safetensors, json and shape errors all mean the files are unusable
        raise AdapterError(f"adapter {folder.name} cannot be loaded: {str(exc).splitlines()[0][:300]}", hint=_FIX) from None


def new_adapter(model: Any, shape: LoraShape, seed: int) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)  # LoRA's A matrices start random: the same seed gives the same adapter
    config = LoraConfig(r=shape.r, lora_alpha=shape.alpha, target_modules=shape.targets, lora_dropout=0.0)
    return get_peft_model(model, config)


def save_version(paths: PolicyPaths, model: Any, meta: VersionMeta, metrics: BaseModel) -> Path:
    """Write the adapter, its metadata and its metrics as `versions/vN`, all at once or not at all."""
    paths.versions.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".v{meta.version}-", dir=paths.versions))
    try:
        model.save_pretrained(staging)
        (staging / "version.json").write_text(meta.model_dump_json(indent=1), encoding="utf-8")
        (staging / "metrics.json").write_text(metrics.model_dump_json(indent=1), encoding="utf-8")
        os.replace(staging, paths.version(meta.version))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths.version(meta.version)


def next_version(paths: PolicyPaths) -> int:
    return max(version_numbers(paths), default=0) + 1


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def training_lock(paths: PolicyPaths) -> Iterator[None]:
    """One training round per user at a time, across threads and processes."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.root / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                "a policy update for this user is already running", hint="wait for it to finish, then try again"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# commands


def rollback(settings: Settings, version: int) -> VersionMeta:
    """Make `version` the active adapter, after checking that it loads."""
    paths, base = policy_paths(settings), planner_base(settings)
    with training_lock(paths):
        meta = check_version(paths, version, base)
        attach_adapter(fresh_base(base).model, paths.version(version))  # refuse files that would not load
        set_active(paths, version)
    return meta


def reset(settings: Settings, purge: bool = False) -> None:
    """Back to the base planner; `purge` also deletes every version and the replay buffer."""
    paths = policy_paths(settings)
    with training_lock(paths):
        set_active(paths, None)
        if purge:
            shutil.rmtree(paths.versions, ignore_errors=True)
            paths.buffer.unlink(missing_ok=True)


# the planner model


@dataclass
class Planner:
    lm: LoadedModel
    version: int | None  # None: the base model
    problem: str | None = None  # why the active adapter was not used, when it was not


_planners: OrderedDict[tuple, LoadedModel] = OrderedDict()
_planners_lock = threading.Lock()


def load_planner(settings: Settings, user: str | None = None, version: int | None = None) -> Planner:
    """The planner model for `user` (default: settings.user): the base with the user's active adapter
    (or with adapter `version`, as named in a planner call, so a round finishing meanwhile changes nothing).

    A missing, corrupt or incompatible adapter never stops a run: the base planner is returned,
    with the reason in `problem` (also logged as a warning).
    """
    user = user or settings.user
    base = planner_base(settings)
    paths = policy_paths(settings, user)
    version = active_version(paths) if version is None else version
    if version is None:
        return Planner(_shared_base(settings, base), None)
    try:
        check_version(paths, version, base)
        return Planner(_with_adapter(base, paths, version, user), version)
    except AdapterError as exc:
        problem = f"{exc.message}; using the base planner for {user}"
        log.warning(problem)
        return Planner(_shared_base(settings, base), None, problem)


def active_label(settings: Settings, user: str | None = None) -> str:
    """The planner version in use for `user`, without loading anything: "v3", or "base"."""
    version = active_version(policy_paths(settings, user))
    return "base" if version is None else f"v{version}"


def planner_model(settings: Settings, user: str | None = None) -> LoadedModel:
    """What to generate with: `LoadedModel` for `llm/local.py`'s stepper and JSON decoding."""
    return load_planner(settings, user).lm


def _shared_base(settings: Settings, base: PlannerBase) -> LoadedModel:
    return load_model(base.spec, settings.cache_dir, settings.local.threads, settings.local.engine)


def _with_adapter(base: PlannerBase, paths: PolicyPaths, version: int, user: str) -> LoadedModel:
    adapter = paths.version(version) / ADAPTER_FILES[1]
    key = (str(base.folder), user, version, adapter.stat().st_mtime_ns)
    with _planners_lock:
        if key not in _planners:
            lm = fresh_base(base)
            model = attach_adapter(lm.model, paths.version(version))
            model.eval()
            # JSON decoding's vocabulary masks depend on the tokenizer only: reuse them across versions.
            masks = next((p.json_masks for k, p in _planners.items() if k[0] == key[0] and p.json_masks), None)
            _planners[key] = LoadedModel(tokenizer=lm.tokenizer, model=model, stop_ids=lm.stop_ids, json_masks=masks)
            while len(_planners) > PLANNERS_KEPT:
                _planners.popitem(last=False)
        _planners.move_to_end(key)
        return _planners[key]


def adapter_loader(settings: Settings) -> Callable[[str], LoadedModel]:
    """What the local provider calls to serve `BASE+lora:vN`: the user's planner with adapter version N."""

    def load(version: str) -> LoadedModel:
        planner = load_planner(settings, version=parse_version(version))
        if planner.version is None:
            raise LLMError(f"adapter {version} of {settings.user} cannot be used ({planner.problem})",
                           hint="`nanoresearch policy status` shows your planner's adapters")
        return planner.lm

    return load
