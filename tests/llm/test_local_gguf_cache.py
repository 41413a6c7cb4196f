"""What loading a GGUF leaves in the cache: the transformers engine gets a de-quantized HF copy,
the llama_cpp engine only the tokenizer (llama.cpp reads the weights from the GGUF itself), and
neither draws transformers' de-quantization progress bar over the run's own display."""

import importlib.util

import pytest

from nanoresearch.llm import local
from nanoresearch.llm.local_model import Sampling, converted_folder, prompt_ids, resolve_source
from nanoresearch.llm.provider import Message

pytestmark = pytest.mark.slow

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt")


def weight_files(folder):
    return [path for pattern in WEIGHT_PATTERNS for path in folder.rglob(pattern)]


def greedy_reply(lm):
    ids = prompt_ids(lm, [Message(role="user", content="What is the capital of France? Answer in one sentence.")])
    return ids, local.generate_text(lm, ids, max_tokens=16, sampling=Sampling())


def test_converting_for_transformers_draws_no_progress_bar(tmp_path, capfd):
    folder = converted_folder(resolve_source("smollm2-135m"), tmp_path / "cache")  # a fresh cache: it converts
    assert weight_files(folder)  # the transformers engine does need the de-quantized weights
    err = capfd.readouterr().err
    assert "Converting" not in err and "it/s" not in err


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="llama-cpp-python is not installed (the 'fast' extra)")
def test_llama_cpp_engine_caches_only_the_tokenizer_and_decodes_as_before(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(local, "_loaded", {})  # a model loaded by an earlier test would skip the cache
    cache = tmp_path / "cache"
    lm = local.load_model("smollm2-135m", cache, engine="llama_cpp")
    assert lm.engine == "llama_cpp"
    assert list((cache / "models").iterdir()) and not weight_files(cache / "models")
    err = capfd.readouterr().err
    assert "Converting" not in err and "it/s" not in err

    # The same GGUF with the tokenizer of a full conversion (what the engine used before) decodes identically.
    from nanoresearch.llm.llama_cpp_engine import load_llama

    source = resolve_source("smollm2-135m")
    before = load_llama(source.folder / str(source.gguf_file), converted_folder(source, cache), 0)
    assert lm.stop_ids == before.stop_ids
    ids, (tokens, finish) = greedy_reply(lm)
    assert greedy_reply(before) == (ids, (tokens, finish))
    assert "Paris" in lm.tokenizer.decode(tokens)
