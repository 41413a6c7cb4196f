"""The writing stage continues a section the token limit cut off, once, and logs it."""

from __future__ import annotations

import json

from nanoresearch.llm.provider import LLMRequest, LLMResponse
from nanoresearch.pipeline.stages.writing import complete_section

CUT = "The recipe trains a logistic regression. It stops after ten"
REST = "Trials may raise the iteration limit."


class CutOffWriter:
    """A model whose first section reply hits the token limit mid-sentence, as the demo's did."""

    name = "local"

    def __init__(self, cut: bool = True) -> None:
        self.cut = cut
        self.prompts: list[str] = []

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.prompts.append("\n".join(m.content for m in request.messages))
        if self.cut and len(self.prompts) == 1:
            return LLMResponse(text=CUT, finish_reason="length")
        return LLMResponse(text=REST, finish_reason="stop")


def test_a_section_cut_off_at_the_token_limit_is_continued_from_its_last_full_sentence(make_context) -> None:
    writer = CutOffWriter()
    ctx = make_context(writer)

    text = complete_section(ctx, "method", "Write the method.")

    assert text == f"The recipe trains a logistic regression. {REST}"
    assert len(writer.prompts) == 2
    assert "<data>The recipe trains a logistic regression.</data>" in writer.prompts[1]
    assert writer.prompts[1].startswith("Write the method.") and "starting with a new sentence" in writer.prompts[1]
    events = [json.loads(line) for line in (ctx.workspace / "log.jsonl").read_text().splitlines()]
    assert {"event": "paper_repair", "section": "method", "kind": "continued"}.items() <= events[-1].items()


def test_a_finished_section_costs_one_call(make_context) -> None:
    writer = CutOffWriter(cut=False)

    assert complete_section(make_context(writer), "method", "Write the method.") == REST
    assert len(writer.prompts) == 1
