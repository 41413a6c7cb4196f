"""Schema-guided JSON decoding for the local model.

The schema fixes the skeleton (braces, keys, commas, quotes), which we write ourselves; the
model only chooses what the schema leaves open: the characters of each string, the digits of each
number, which enum value, how many array items. Every choice is made from the model's own
logits restricted to tokens that keep the text valid, so even a 135M model produces JSON of the
right shape. Constraints the skeleton cannot enforce (patterns, wide numeric ranges) are left to
the client's validate-and-repair loop.
"""

from __future__ import annotations

import json
from typing import Any

from nanoresearch.llm.local_model import (
    LoadedModel,
    Sampling,
    import_torch,
    make_generator,
    penalize_repeats,
    pick_token,
)
from nanoresearch.llm.provider import LLMRequest

DEFAULT_MAX_ITEMS = 8
MAX_STRING_TOKENS = 256
MAX_NUMBER_TOKENS = 12
ENUMERABLE_INT_RANGE = 64  # integer ranges this small are decoded as an enum of their values
ITEM_START_CHARS = set('"{[-0123456789tfn')


class VocabMasks:
    """Boolean masks over the vocabulary, computed once per loaded model."""

    def __init__(self, lm: LoadedModel, size: int) -> None:
        torch = import_torch()
        tokenizer = lm.tokenizer
        count = min(len(tokenizer), size)
        texts = tokenizer.batch_decode([[i] for i in range(count)]) + [""] * (size - count)
        special = set(tokenizer.all_special_ids)

        def mask(predicate: Any) -> Any:
            return torch.tensor([i not in special and bool(t) and predicate(t) for i, t in enumerate(texts)])

        self.texts = texts
        self.lengths = torch.tensor([len(t) for t in texts])
        self.string_body = mask(lambda t: '"' not in t and "\\" not in t and "\ufffd" not in t and min(map(ord, t)) >= 32)
        self.quote_start = mask(lambda t: t.startswith('"'))
        # A string also ends where the model would end its reply: held in the string, a 1.5B spelled
        # the end of its turn out (`<|im_start|>` in pieces) until the token limit.
        self.string_end = self.quote_start | torch.tensor([i in lm.stop_ids for i in range(size)])
        self.digits = mask(lambda t: t.isascii() and t.isdigit())
        self.minus = mask(lambda t: t == "-")
        self.dot = mask(lambda t: t == ".")
        self.number_end = mask(lambda t: t[0] in ",}] \n")
        self.comma_start = mask(lambda t: t.lstrip().startswith(","))
        self.close_bracket_start = mask(lambda t: t.lstrip().startswith("]"))
        self.item_start = mask(lambda t: t.lstrip()[:1] in ITEM_START_CHARS)


def vocab_masks(lm: LoadedModel, size: int) -> VocabMasks:
    if not isinstance(lm.json_masks, VocabMasks):
        lm.json_masks = VocabMasks(lm, size)  # cached on the loaded model
    return lm.json_masks


def generate_json(lm: LoadedModel, stepper: Any, request: LLMRequest, sampling: Sampling) -> tuple[str, list[int], str]:
    """The JSON text and the token ids the model was fed as its output (forced and chosen alike).

    `stepper` is a fresh stepper over the prompt (either engine's; see local.make_stepper).
    """
    writer = JsonWriter(lm, stepper, request, sampling)
    writer.value(request.json_schema or {})
    writer.flush()
    finish = "length" if writer.used >= request.max_tokens else "stop"
    return "".join(writer.parts), writer.ids, finish


class JsonWriter:
    def __init__(self, lm: LoadedModel, stepper: Any, request: LLMRequest, sampling: Sampling) -> None:
        self.lm = lm
        self.sampling = sampling
        self.chosen: list[int] = []  # tokens the model picked (not forced), for the repeat penalty
        self.root = request.json_schema or {}
        self.stepper = stepper
        self.masks = vocab_masks(lm, self.stepper.logits.shape[-1])
        self.temperature = sampling.temperature
        self.generator = make_generator(sampling.seed)
        self.budget = request.max_tokens
        self.ids: list[int] = []  # the output as the model saw it, for training on it later
        self.parts: list[str] = []
        self.pending = ""

    # writing

    def force(self, text: str) -> None:
        self.pending += text

    def flush(self) -> None:
        if self.pending:
            ids = self.lm.tokenizer(self.pending, add_special_tokens=False)["input_ids"]
            self.stepper.push(ids)
            self.parts.append(self.pending)
            self.ids.extend(ids)
            self.pending = ""

    def emit(self, token: int) -> str:
        self.stepper.push([token])
        self.ids.append(token)
        text = self.masks.texts[token]
        self.parts.append(text)
        return text

    @property
    def used(self) -> int:
        return len(self.ids)

    def left(self) -> int:
        return self.budget - self.used

    def best(self, mask: Any) -> float:
        return float(self.stepper.logits.masked_fill(~mask, float("-inf")).max())

    def pick(self, mask: Any) -> int:
        recent = self.chosen[-self.sampling.repetition_window :] if self.sampling.repetition_window else []
        logits = penalize_repeats(self.stepper.logits, recent, self.sampling.repetition_penalty)
        token = pick_token(logits, self.temperature, self.generator, mask)
        self.chosen.append(token)
        return token

    # schema dispatch

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self._lookup(schema["$ref"])
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                branches = [self.resolve(b) for b in schema[combinator]]
                concrete = [b for b in branches if b.get("type") != "null"]
                return concrete[0] if concrete else branches[0]
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.resolve(schema["allOf"][0])
        return schema

    def _lookup(self, ref: str) -> dict[str, Any]:
        node: Any = self.root
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node

    def value(self, schema: dict[str, Any]) -> None:
        schema = self.resolve(schema)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if "const" in schema:
            self.force(json.dumps(schema["const"]))
        elif "enum" in schema:
            self.choose(schema["enum"])
        elif kind == "object" or "properties" in schema:
            self.object(schema)
        elif kind == "array":
            self.array(schema)
        elif kind == "integer":
            self.integer(schema)
        elif kind == "number":
            self.number(schema, integer=False)
        elif kind == "boolean":
            self.choose([True, False])
        elif kind == "null":
            self.force("null")
        else:
            self.string(schema)

    def object(self, schema: dict[str, Any]) -> None:
        self.force("{")
        for index, (name, sub) in enumerate(schema.get("properties", {}).items()):
            self.force(("" if index == 0 else ", ") + json.dumps(name) + ": ")
            self.value(sub)
        self.force("}")

    def array(self, schema: dict[str, Any]) -> None:
        items = schema.get("items", {})
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", max(low, DEFAULT_MAX_ITEMS))
        self.force("[")
        count = 0
        while count < high and (count < low or self.wants_another_item(count)):
            if count:
                self.force(", ")
            self.value(items)
            count += 1
        self.force("]")

    def wants_another_item(self, count: int) -> bool:
        self.flush()
        if self.left() <= 0:
            return False
        more = self.masks.comma_start if count else self.masks.item_start
        return self.best(more) > self.best(self.masks.close_bracket_start)

    def string(self, schema: dict[str, Any]) -> None:
        self.force('"')
        self.flush()
        min_len = schema.get("minLength", 0)
        max_len = schema.get("maxLength")
        content = ""
        steps = 0
        while steps < MAX_STRING_TOKENS and (self.left() > 0 or len(content) < min_len):
            allowed = self.masks.string_body
            if max_len is not None:
                if len(content) >= max_len:
                    break
                allowed = allowed & (self.masks.lengths <= max_len - len(content))
            if len(content) >= min_len and self.best(self.masks.string_end) >= self.best(allowed):
                break
            content += self.emit(self.pick(allowed))
            steps += 1
        self.force('"')

    def integer(self, schema: dict[str, Any]) -> None:
        low, high = _bounds(schema)
        if low is not None and high is not None and 0 <= high - low <= ENUMERABLE_INT_RANGE:
            self.choose(list(range(int(low), int(high) + 1)))
        else:
            self.number(schema, integer=True)

    def number(self, schema: dict[str, Any], integer: bool) -> None:
        self.flush()
        low, _ = _bounds(schema)
        text = ""
        for _ in range(MAX_NUMBER_TOKENS):
            has_digit = any(c.isdigit() for c in text)
            allowed = self.masks.digits.clone()
            if not text and (low is None or low < 0):
                allowed |= self.masks.minus
            if not integer and has_digit and "." not in text:
                allowed |= self.masks.dot
            if has_digit and (self.left() <= 0 or self.best(self.masks.number_end) > self.best(allowed)):
                break
            text += self.emit(self.pick(allowed))
        if not text[-1:].isdigit():
            self.force("0")

    def choose(self, options: list[Any]) -> None:
        """Pick the option the model finds most likely here, by scoring each continuation."""
        self.flush()
        encoded = [json.dumps(option) for option in options]
        if len(encoded) == 1:
            self.force(encoded[0])
            return
        torch = import_torch()
        scores = torch.tensor([self.stepper.score(self._ids(text)) for text in encoded])
        if self.temperature <= 0:
            index = int(scores.argmax())
        else:
            index = int(torch.multinomial(torch.softmax(scores / self.temperature, -1), 1, generator=self.generator))
        self.force(encoded[index])

    def _ids(self, text: str) -> list[int]:
        return self.lm.tokenizer(text, add_special_tokens=False)["input_ids"]


def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None]:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if "exclusiveMinimum" in schema and "minimum" not in schema:
        low = schema["exclusiveMinimum"] + 1
    if "exclusiveMaximum" in schema and "maximum" not in schema:
        high = schema["exclusiveMaximum"] - 1
    return low, high
