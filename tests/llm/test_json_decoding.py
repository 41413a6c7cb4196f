"""Schema-guided JSON decoding on a scripted model: which token it prefers at each step is set by hand."""

import json

import torch

from nanoresearch.llm.json_decoding import generate_json
from nanoresearch.llm.local_model import LoadedModel, Sampling
from nanoresearch.llm.provider import LLMRequest, Message

VOCAB = ['"', "x = 1", ")", "}]}", "<|", "im_start", "|>", "<|im_end|>"]
END_OF_TURN = VOCAB.index("<|im_end|>")


class Tokenizer:
    all_special_ids = [END_OF_TURN]

    def __len__(self) -> int:
        return len(VOCAB)

    def batch_decode(self, ids: list[list[int]]) -> list[str]:
        return [VOCAB[i[0]] for i in ids]

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [VOCAB.index(c) if c in VOCAB else 1 for c in text]}  # enough for forced text


class Stepper:
    """Prefers, in turn, each token of `wanted` after a token the model chose, and the ones after it
    next (a model that would end its turn would next spell it out); every other token least."""

    def __init__(self, wanted: list[int]) -> None:
        self.wanted = wanted
        self.logits = self.preferring()

    def preferring(self) -> torch.Tensor:
        logits = torch.full((len(VOCAB),), -1.0)
        for rank, token in reversed(list(enumerate(self.wanted))):
            logits[token] = 10.0 - rank
        return logits

    def push(self, ids: list[int]) -> None:
        if len(ids) == 1 and ids[0] == self.wanted[0] and len(self.wanted) > 1:
            self.wanted = self.wanted[1:]
        self.logits = self.preferring()


def decoded(wanted: list[str]) -> str:
    lm = LoadedModel(tokenizer=Tokenizer(), model=None, stop_ids={END_OF_TURN})
    request = LLMRequest(model="scripted", messages=[Message(role="user", content="go")], max_tokens=200,
                         json_schema={"type": "object", "properties": {"replace": {"type": "string"}}})
    text, _, _ = generate_json(lm, Stepper([VOCAB.index(t) for t in wanted]), request, Sampling())
    return json.loads(text)["replace"]


def test_a_string_ends_where_the_model_would_end_its_reply():
    # A 1.5B wrote the JSON's closing brackets into the string, then wanted to end its turn; held in
    # the string, it spelled `<|im_start|>` out in pieces until the token limit.
    assert decoded(["x = 1", ")", "}]}", "<|im_end|>", "<|", "im_start", "|>"]) == "x = 1)}]}"


def test_a_string_still_ends_at_its_closing_quote():
    assert decoded(["x = 1", '"']) == "x = 1"
