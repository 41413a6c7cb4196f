"""SDPO mechanics on a tiny random Llama: alignment of log-probs, the two losses, the step."""

import pytest
import torch

from nanoresearch.llm.local_model import load_hf_folder, prompt_ids
from nanoresearch.llm.provider import Message
from nanoresearch.policy.adapters import LoraShape, new_adapter
from nanoresearch.policy.checks import gap
from nanoresearch.policy.sdpo import (
    Example,
    FixedTargets,
    LossConfig,
    adapter_disabled,
    base_log_probs,
    response_log_probs,
    sdpo_loss,
    sdpo_step,
    teacher_log_probs,
    train_round,
    trainable_parameters,
)
from tiny_planner import planner_prompt

PLAN = '{"objectives": ["train a small network"], "constraints": ["use three seeds"], "budget_share": "50%"}'


@pytest.fixture
def peft_model(tiny_planner_dir):
    lm = load_hf_folder(tiny_planner_dir)
    return lm, new_adapter(lm.model, LoraShape(r=4, alpha=8, targets=["q_proj", "v_proj", "up_proj"]), seed=0)


def make_example(lm, feedback="always include an ablation of each component") -> Example:
    messages = planner_prompt("improve digit classification")
    hindsight = [*messages[:-1], Message(role="user", content=f"{messages[-1].content}\n\n{feedback}")]
    y = lm.tokenizer(PLAN, add_special_tokens=False)["input_ids"] + [lm.tokenizer.eos_token_id]
    return Example(prompt_ids(lm, messages), prompt_ids(lm, hindsight), y)


def test_response_log_probs_row_t_predicts_token_t(peft_model):
    lm, model = peft_model
    example = make_example(lm)
    rows = response_log_probs(model, example.student_ids, example.response_ids)
    with torch.no_grad():
        full = model(input_ids=torch.tensor([example.student_ids + example.response_ids])).logits[0].log_softmax(-1)
    start = len(example.student_ids) - 1
    assert rows.shape == (len(example.response_ids), lm.model.config.vocab_size)
    assert torch.allclose(rows, full[start:start + len(example.response_ids)], atol=1e-5)


def test_sampled_loss_is_clipped_advantage_times_log_prob_after_skip():
    torch.manual_seed(0)
    student = torch.randn(6, 10).log_softmax(-1).requires_grad_()
    teacher = torch.randn(6, 10).log_softmax(-1)
    response = [1, 2, 3, 4, 5, 6]
    cfg = LossConfig(loss="sampled", clip=0.5, skip_tokens=2)
    loss, stats = sdpo_loss(student, teacher, response, cfg)
    rows = torch.arange(6)
    s_tok, q_tok = student[rows, response].detach(), teacher[rows, response]
    advantage = (q_tok - s_tok).clamp(-0.5, 0.5)
    expected = -(advantage * student[rows, response])[2:].mean()
    assert float(loss) == pytest.approx(float(expected), abs=1e-6)
    assert stats.abs_advantage == pytest.approx(float((q_tok - s_tok).abs()[2:].mean()), abs=1e-6)
    # The gradient flows only through log s at the realised tokens, weighted by the advantage.
    loss.backward()
    grad = student.grad[rows, response]
    assert torch.allclose(grad[2:], -advantage[2:] / 4, atol=1e-6)
    assert torch.all(grad[:2] == 0)


def test_full_kl_loss_is_reverse_kl_and_zero_when_teacher_equals_student():
    torch.manual_seed(0)
    student = torch.randn(5, 8).log_softmax(-1)
    teacher = torch.randn(5, 8).log_softmax(-1)
    cfg = LossConfig(loss="full_kl", skip_tokens=1)
    loss, _ = sdpo_loss(student, teacher, [0, 1, 2, 3, 4], cfg)
    expected = (student.exp() * (student - teacher)).sum(-1)[1:].mean()
    assert float(loss) == pytest.approx(float(expected), abs=1e-6)
    same, _ = sdpo_loss(student, student, [0, 1, 2, 3, 4], cfg)
    assert float(same) == pytest.approx(0.0, abs=1e-6)
    anchored, stats = sdpo_loss(student, teacher, [0, 1, 2, 3, 4], LossConfig(skip_tokens=1, anchor_beta=0.5), base=teacher)
    assert float(anchored) == pytest.approx(float(expected) * 1.5, abs=1e-5)
    assert stats.anchor_kl == pytest.approx(float(expected), abs=1e-6)


def test_base_teacher_ignores_the_adapter_and_live_teacher_follows_it(peft_model):
    lm, model = peft_model
    example = make_example(lm)
    base_before = teacher_log_probs(model, example, LossConfig(teacher="base"))
    train_round(model, [example], LossConfig(), steps=3, lr=0.05)
    assert torch.equal(teacher_log_probs(model, example, LossConfig(teacher="base")), base_before)
    live = teacher_log_probs(model, example, LossConfig(teacher="live"))
    assert not torch.allclose(live, base_before, atol=1e-4)


@pytest.mark.parametrize("loss", ["full_kl", "sampled"])
def test_a_round_closes_the_gap_to_the_teacher(peft_model, loss):
    lm, model = peft_model
    example = make_example(lm)
    cfg = LossConfig(loss=loss, teacher="base")
    before = gap(model, [example], cfg)
    history = train_round(model, [example], cfg, steps=8, lr=0.02)
    after = gap(model, [example], cfg)
    assert len(history) == 8 and all(h.seconds > 0 for h in history)
    assert after.abs_log_ratio < before.abs_log_ratio
    if loss == "full_kl":
        assert after.kl < 0.5 * before.kl


def test_step_clips_the_gradient_norm(peft_model):
    lm, model = peft_model
    example = make_example(lm)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.0)
    stats = sdpo_step(model, optimizer, [(0, example)], LossConfig(), 1e-3, FixedTargets())
    clipped = torch.norm(torch.stack([p.grad.norm() for p in trainable_parameters(model)]))
    assert stats.grad_norm > 1e-3  # the norm before clipping is reported
    assert float(clipped) == pytest.approx(1e-3, rel=1e-3)


def test_gradients_accumulate_as_the_mean_over_examples(peft_model):
    lm, model = peft_model
    first, second = make_example(lm), make_example(lm, "report every seed")
    # B starts at zero in LoRA, so the first step's gradient reaches only B; give it a value.
    train_round(model, [first], LossConfig(), steps=1, lr=0.05)
    params = trainable_parameters(model)

    def grads(batch):
        optimizer = torch.optim.SGD(params, lr=0.0)
        sdpo_step(model, optimizer, batch, LossConfig(), 1e9, FixedTargets())
        return [p.grad.clone() for p in params]

    one, two, both = grads([(0, first)]), grads([(1, second)]), grads([(0, first), (1, second)])
    for a, b, ab in zip(one, two, both):
        assert torch.allclose(ab, (a + b) / 2, atol=1e-6)


def test_fixed_targets_compute_the_base_teacher_once_within_budget(peft_model):
    lm, model = peft_model
    example = make_example(lm)
    targets = FixedTargets()
    first = targets.teacher(model, 0, example, LossConfig())
    assert targets.teacher(model, 0, example, LossConfig()) is first
    assert targets.base(model, 0, example, LossConfig()) is None  # no anchor, no base pass
    assert targets.base(model, 0, example, LossConfig(anchor_beta=0.1)) is not None
    tight = FixedTargets(max_bytes=10)
    assert tight.teacher(model, 0, example, LossConfig()) is not tight.teacher(model, 0, example, LossConfig())


def test_disabling_the_adapter_gives_the_base_model(peft_model, tiny_planner_dir):
    lm, model = peft_model
    example = make_example(lm)
    train_round(model, [example], LossConfig(), steps=2, lr=0.05)
    fresh = load_hf_folder(tiny_planner_dir).model
    with torch.no_grad(), adapter_disabled(fresh):  # a plain model: the context changes nothing
        expected = response_log_probs(fresh, example.student_ids, example.response_ids)
    assert torch.allclose(base_log_probs(model, example.student_ids, example.response_ids), expected, atol=1e-5)
