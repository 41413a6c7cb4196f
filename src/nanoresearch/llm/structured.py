"""Structured output: schemas in, validated objects out, with bounded repair.

The model's text is parsed leniently (code fences and prose around the object are tolerated),
then validated against the JSON schema and, when one was given, the pydantic model. A reply cut off
by the token limit is never taken as an answer, even when closing its brackets would make it
valid: the cut may fall mid-sentence. What fails is described precisely so the client can raise
the token limit or ask the model to repair it.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from nanoresearch.errors import UserError
from nanoresearch.llm.provider import Message


class InvalidOutput(Exception):
    """The text is not (yet) a valid instance; `problem` says why, for the repair prompt."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def schema_of(target: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(target, dict):
        check_schema(target)
        return target
    return target.model_json_schema()


def check_schema(schema: dict[str, Any]) -> None:
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise UserError(f"not a valid JSON schema: {exc.message}") from None


# A bound a server's grammar compiler expands character by character: llama.cpp turns a `maxLength` of
# 2000 into 2000 nested optional rules and drops the connection while compiling it. (A `minLength` is
# kept: it becomes that many required characters, cheap, and it keeps a small model from answering "".)
_LENGTH_BOUNDS = ("maxLength",)
_NAMED_SCHEMAS = ("properties", "$defs", "definitions", "patternProperties")


def server_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as a server's constrained decoder gets it: without strings' maximum lengths. The reply is
    still checked against the full schema here (`parse`), and a string too long is repaired."""
    if isinstance(schema, list):
        return [server_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _NAMED_SCHEMAS and isinstance(value, dict):  # names here are fields, not keywords
            kept[key] = {name: server_schema(sub) for name, sub in value.items()}
        elif key not in _LENGTH_BOUNDS:
            kept[key] = server_schema(value)
    return kept


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Reply with one JSON object only, no prose and no code fences. "
        "It must validate against this JSON schema:\n" + json.dumps(schema, separators=(",", ":"))
    )


def with_schema_instruction(messages: list[Message], schema: dict[str, Any]) -> list[Message]:
    """Append the format instruction to the system message (or add one)."""
    instruction = schema_instruction(schema)
    if messages and messages[0].role == "system":
        first = Message(role="system", content=messages[0].content + "\n\n" + instruction)
        return [first, *messages[1:]]
    return [Message(role="system", content=instruction), *messages]


def repair_messages(messages: list[Message], bad_output: str, problem: str) -> list[Message]:
    return [
        *messages,
        Message(role="assistant", content=bad_output),
        Message(
            role="user",
            content=f"That reply is not valid: {problem}\nReply again with the corrected JSON object only.",
        ),
    ]


def parse(
    text: str, schema: dict[str, Any], model: type[BaseModel] | None = None, finish_reason: str | None = None
) -> Any:
    """The validated object in `text`, or InvalidOutput naming the first problem."""
    if finish_reason == "length":
        # Even JSON that parses may end early: a constrained decoder closes a string that ran out of room.
        raise InvalidOutput(
            "the reply was cut off by the token limit before it was finished; "
            "reply with a shorter JSON object (keep every string brief)"
        )
    data = extract_json(text)
    errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise InvalidOutput(f"schema violation at {where}: {first.message}")
    if model is None:
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidOutput(f"schema violation: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from None


def extract_json(text: str) -> Any:
    """Find the JSON value in a model reply; one cut off mid-way is InvalidOutput saying so."""
    start = _first_json_start(text)
    if start < 0:
        raise InvalidOutput("the reply contains no JSON object")
    body = text[start:]
    decoder = json.JSONDecoder()
    try:
        value, _ = decoder.raw_decode(body)
        return value
    except json.JSONDecodeError as exc:
        if is_cut_off(body):
            raise InvalidOutput(
                f"the JSON stops before its end (the reply ends with {body[-40:]!r}); "
                "reply with the complete object, shorter if needed"
            ) from None
        raise InvalidOutput(f"the JSON does not parse: {exc.msg} at character {exc.pos}") from None


def is_cut_off(body: str) -> bool:
    """Whether `body` is the start of a JSON value that was cut off, rather than malformed JSON."""
    closed = close_truncated_json(body)
    if closed is None:
        return False
    try:
        json.loads(closed)
    except json.JSONDecodeError:
        return False
    return True


def _first_json_start(text: str) -> int:
    positions = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return min(positions) if positions else -1


def close_truncated_json(body: str) -> str | None:
    """Close open strings, arrays and objects of JSON cut off mid-way (a hit max_tokens).

    Returns None when the text is not a prefix of JSON (e.g. a stray bracket). The closed text
    tells a cut-off reply from a malformed one; it is never accepted as the answer.
    """
    stack: list[str] = []
    in_string = escaped = False
    for i, char in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]":
            if not stack or stack.pop() != char:
                return None
            if not stack:
                return body[: i + 1]
    if not stack:
        return None
    tail = body
    if in_string:
        tail += "\\" if escaped else ""
        tail += '"'
    tail = tail.rstrip()
    if tail.endswith(":"):  # a key cut off before its value: drop the key
        tail = tail[:-1].rstrip()
        tail = tail[: tail.rfind('"', 0, len(tail) - 1)].rstrip()
    if tail.endswith(","):
        tail = tail[:-1].rstrip()
    return tail + "".join(reversed(stack))

