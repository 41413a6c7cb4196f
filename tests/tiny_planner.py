"""A tiny random planner model (2 layers, byte-level BPE trained in memory) and a way to record
a planner call with feedback in the store, as the pipeline does."""

from __future__ import annotations

import itertools
from pathlib import Path

from nanoresearch.llm.local_model import LoadedModel, prompt_ids
from nanoresearch.llm.provider import Message
from nanoresearch.store import Store
from nanoresearch.store.models import StagePlanRecord

CORPUS = [
    "Research goal: improve handwritten digit classification accuracy",
    "Stage: planning: write the experiment blueprint: datasets, baselines, method, metrics, ablations, seeds",
    '{"objectives": ["train a small network"], "constraints": ["use three seeds"], "budget_share": "50%"}',
    "always include an ablation of each component; keep the budget small; report every seed",
    "The user replied to your previous answer for stage planning. Use it. noted thanks",
] * 20

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_tiny_planner(folder: Path) -> Path:
    """An HF folder the local provider and the policy load like any other model."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    core.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, eos_token_id=tokenizer.eos_token_id,
        initializer_range=0.2,  # peakier than the default 0.02, so contexts change the logits measurably
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


_runs = itertools.count(1)


def planner_prompt(goal: str, stage: str = "planning") -> list[Message]:
    user = f"Research goal: {goal}\n\nStage: {stage}: write the experiment blueprint\n\nUser feedback in this run:\n(none)"
    return [Message(role="system", content="You are the research planner."), Message(role="user", content=user)]


def record_feedback(
    store: Store, lm: LoadedModel, user: str, model: str, goal: str, plan: str, feedback: str, stage: str = "planning",
    output_ids: list[int] | None = None,
) -> int:
    """A stage plan (prompt, exact output ids) and the user's comment on it; returns the feedback id."""
    user_id = store.ensure_user(user)
    run_id = f"run-{user}-{next(_runs)}"
    store.create_run(run_id, store.ensure_project(user_id, "policy-tests"), goal, "/tmp/none")
    messages = planner_prompt(goal, stage)
    ids = output_ids if output_ids is not None else lm.tokenizer(plan, add_special_tokens=False)["input_ids"]
    plan_id = store.save_stage_plan(StagePlanRecord(
        user_id=user_id, run_id=run_id, stage=stage, provider="local", model=model,
        prompt=[m.model_dump() for m in messages], prompt_ids=prompt_ids(lm, messages), output_text=plan,
        output_ids=ids, plan={},
    ))
    return store.add_feedback(user_id, run_id, stage, "comment", feedback, plan_id)
