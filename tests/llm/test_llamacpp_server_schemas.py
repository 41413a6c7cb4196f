"""The schemas the product sends, against the REAL llama.cpp server (llama-cpp-python's OpenAI-compatible
server with the bundled SmolLM2 GGUF), with a recipe whose lines hold quotes, triple quotes, backslashes
and non-ASCII: the server must not crash and the product must get a parsed answer.

llama.cpp's schema-to-grammar converter mis-escapes enum values holding quotes and the server then
segfaults: the proposal schema holds `find` to the recipe's lines with an enum for the embedded model
only. And it expands a string's `maxLength` into that many nested rules: the proposal's 2000 made the
server drop the connection on every proposal, so servers get the schema without maximum lengths.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm.servers import LlamaServer, llama_cpp_available
from nanoresearch.compute.budget import Budget
from nanoresearch.compute.executor import create_executor
from nanoresearch.config import load_settings
from nanoresearch.llm.client import LLM
from nanoresearch.pipeline.coevolution.distill import SkillCandidates
from nanoresearch.pipeline.stages.ideation import Queries
from nanoresearch.trials.loop import LoopSettings, TrialLoop
from nanoresearch.trials.task import load_task
from trials.tiny import TINY_EVALUATOR, TINY_TASK

pytestmark = pytest.mark.slow

# Every line a grammar converter can trip on: quotes of both kinds, a docstring, backslashes, non-ASCII.
HOSTILE_RECIPE = textwrap.dedent(
    '''\
    """Recipe: «digits» — train, then score; résumé of the 'idea' in "quotes"."""
    import json, os
    PATTERN = r"\\d+\\.\\d*"  # a regex with backslashes
    MAX_ITER = int(os.environ.get("MAX_ITER", "10"))
    NAME = 'naïve \\'bayes\\' → ø'
    VALUE = 1
    print("working\\n", end="")
    json.dump({"value": VALUE}, open("out.json", "w"))
    '''
)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    if not llama_cpp_available():
        pytest.skip("llama-cpp-python is not installed (pip install 'nanoresearch[dev]')")
    with LlamaServer(log_path=tmp_path_factory.mktemp("llama-schemas") / "server.log") as server:
        yield server


def server_settings(server: LlamaServer):
    every_stage = {"endpoint": "srv", "model": server.alias, "max_tokens": 256}
    return load_settings({
        "endpoints": {"srv": {"kind": "openai", "base_url": server.base_url, "timeout_s": 300}},
        "stages": {stage: every_stage for stage in ("coding", "ideation", "analysis")},
        "llm": {"replay": "off", "backoff_initial_s": 0},
    })


def hostile_task(folder: Path):
    folder.mkdir()
    (folder / "task.toml").write_text(TINY_TASK)
    (folder / "train.py").write_text(HOSTILE_RECIPE, encoding="utf-8")
    (folder / "evaluate.py").write_text(TINY_EVALUATOR)
    return load_task(folder)


def assert_alive(server: LlamaServer) -> None:
    assert server._process is not None and server._process.poll() is None, f"the server died{server._log_tail()}"


def test_a_proposal_for_a_hostile_recipe_is_parsed_and_the_server_lives(llama_server, store, tmp_path):
    settings = server_settings(llama_server)
    user = store.ensure_user(settings.user)
    run = store.create_run("run-hostile", store.ensure_project(user, "tiny"), "optimise", str(tmp_path / "ws"), kind="trials")
    llm = LLM(settings, store, user, run_id=run.id)
    loop = TrialLoop(hostile_task(tmp_path / "task"), store, llm, create_executor("local", settings), run.id, user,
                     Budget(trials=3), tmp_path / "ws", LoopSettings(max_debug=0))
    assert not loop.lines_only_model()  # so `find` is free text: no recipe line goes into the schema as an enum
    trial = loop.propose(next(loop._specialists))
    assert_alive(llama_server)
    # The model may name a line that is not in the recipe (bad_proposal, said so), but its reply was parsed.
    assert "the model gave no usable proposal" not in trial.detail, trial.detail
    assert trial.hypothesis != "(no valid proposal)"


@pytest.mark.parametrize("schema", [Queries, SkillCandidates], ids=lambda s: s.__name__)
def test_pipeline_schemas_with_the_hostile_recipe_in_the_prompt_are_parsed(llama_server, store, schema):
    llm = LLM(server_settings(llama_server), store, store.ensure_user("alice"))
    prompt = f"This recipe did not improve the score:\n{HOSTILE_RECIPE}\nAnswer briefly."
    done = llm.complete(prompt, stage="analysis", schema=schema, max_tokens=256)
    assert_alive(llama_server)
    assert isinstance(done.parsed, schema)
