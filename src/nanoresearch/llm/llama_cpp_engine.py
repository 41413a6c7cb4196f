"""The llama_cpp engine: our decoding loop on llama.cpp's forward pass over the GGUF file.

Only the forward pass moves to llama.cpp; tokenization (the HF tokenizer cached from the GGUF by
`local_model.tokenizer_folder`, without weights), sampling, stop tokens and schema-guided JSON
decoding stay ours, so both engines give the same interface and the same structured-output
guarantees.
"""

from __future__ import annotations

import atexit
import os
import weakref
from pathlib import Path
from typing import Any

from nanoresearch.llm.local_model import LoadedModel, import_torch, stop_ids_of

CONTEXT_TOKENS = 8192  # SmolLM2 was trained with 8k positions
# A prompt goes into llama.cpp this many tokens per call. Python acts on Ctrl-C (and on the SIGTERM a run
# turns into one) only between calls, and one call of llama.cpp's own 512-token batch took 13-30 s on a
# busy 2-core machine; 16 tokens take about as long as one. (transformers needs no such care: its
# forward pass is Python, which hands control back between layers.)
PREFILL_CHUNK = 16


def load_llama(gguf: Path, hf_folder: Path, threads: int) -> LoadedModel:
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    threads = threads or os.cpu_count() or 1
    llama = Llama(model_path=str(gguf), n_ctx=CONTEXT_TOKENS, n_threads=threads, n_threads_batch=threads, verbose=False)
    # Freed before interpreter teardown: llama_cpp's own __del__ then finds its C bindings gone
    # and prints a traceback at the end of every process that loaded a GGUF.
    atexit.register(_close_if_alive, weakref.ref(llama))
    tokenizer = AutoTokenizer.from_pretrained(hf_folder)
    return LoadedModel(tokenizer=tokenizer, model=llama, stop_ids=stop_ids_of(hf_folder, tokenizer), engine="llama_cpp")


def _close_if_alive(ref: weakref.ref[Any]) -> None:
    llama = ref()
    if llama is not None:
        llama.close()


class LlamaCppStepper:
    """The stepper contract of `local.Stepper` on a llama.cpp context.

    The context is shared by the loaded model, so only one stepper may be alive per model; the
    local provider's per-model lock guarantees that.
    """

    def __init__(self, lm: LoadedModel, ids: list[int]) -> None:
        self.llama = lm.model
        self.llama.reset()
        self.length = 0
        self.logits: Any = None
        self.push(ids)

    def push(self, ids: list[int]) -> None:
        if self.llama.n_tokens + len(ids) > CONTEXT_TOKENS:
            from nanoresearch.errors import LLMError

            raise LLMError(f"prompt and reply exceed the local model's context of {CONTEXT_TOKENS} tokens")
        for start in range(0, len(ids), PREFILL_CHUNK):
            self.llama.eval(ids[start : start + PREFILL_CHUNK])
        self.length = self.llama.n_tokens
        self.logits = self._last_logits()

    def score(self, ids: list[int]) -> float:
        """Log-probability of `ids` as the continuation here; leaves the state unchanged."""
        total = float(self.logits.log_softmax(-1)[ids[0]])
        if len(ids) > 1:
            start = self.llama.n_tokens
            for previous, following in zip(ids[:-1], ids[1:]):
                self.llama.eval([previous])
                total += float(self._last_logits().log_softmax(-1)[following])
            self.llama._ctx.kv_cache_seq_rm(-1, start, -1)  # drop what scoring added
            self.llama.n_tokens = start
        return total

    def _last_logits(self) -> Any:
        import numpy as np

        view = np.ctypeslib.as_array(self.llama._ctx.get_logits(), shape=(self.llama.n_vocab(),))
        return import_torch().from_numpy(view.copy())
