import pytest

from nanoresearch.errors import UserError
from nanoresearch.llm.structured import (
    InvalidOutput,
    check_schema,
    close_truncated_json,
    extract_json,
    parse,
)

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "score": {"type": "integer", "minimum": 1, "maximum": 10}},
    "required": ["name", "score"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "a", "score": 3}', {"name": "a", "score": 3}),
        ('Sure! Here it is:\n```json\n{"name": "a", "score": 3}\n```', {"name": "a", "score": 3}),
        ('{"name": "a", "score": 3} and some trailing words', {"name": "a", "score": 3}),
    ],
)
def test_extract_json_tolerates_prose_and_fences(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    "text",
    ['{"hypothesis": "Augmenting digits with small rot', '{"name": "a", "tags": ["x", "y', '{"name": "a", "score":',
     '{"name": "a",'],
)
def test_extract_json_never_takes_a_cut_off_reply_as_an_answer(text):
    with pytest.raises(InvalidOutput, match="stops before its end"):
        extract_json(text)


def test_close_truncated_json_closes_what_was_cut():
    assert close_truncated_json('{"name": "a", "tags": ["x", "y') == '{"name": "a", "tags": ["x", "y"]}'
    assert close_truncated_json('{"name": "a", "score":') == '{"name": "a"}'


def test_a_reply_cut_by_the_token_limit_is_invalid_even_when_it_parses():
    # The local model's decoder closes a string that ran out of room, so the JSON is whole but cut.
    with pytest.raises(InvalidOutput, match="cut off by the token limit"):
        parse('{"name": "Augmenting digits with small rot", "score": 3}', SCHEMA, finish_reason="length")
    assert parse('{"name": "a", "score": 3}', SCHEMA, finish_reason="stop") == {"name": "a", "score": 3}


@pytest.mark.parametrize("text", ["no json here", '{"a": 1]}', "{'single': 'quotes'}"])
def test_extract_json_rejects_what_cannot_be_recovered(text):
    with pytest.raises(InvalidOutput):
        extract_json(text)


def test_close_truncated_json_refuses_mismatched_brackets():
    assert close_truncated_json('{"a": [1, 2}') is None


def test_parse_names_the_schema_violation():
    with pytest.raises(InvalidOutput, match="score"):
        parse('{"name": "a", "score": 42}', SCHEMA)
    with pytest.raises(InvalidOutput, match="'score' is a required property"):
        parse('{"name": "a"}', SCHEMA)


def test_invalid_schema_is_a_user_error():
    with pytest.raises(UserError, match="not a valid JSON schema"):
        check_schema({"type": "no-such-type"})
