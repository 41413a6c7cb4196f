import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from nanoresearch.trials.proposals import (
    Edit,
    EditError,
    Setting,
    apply_edits,
    editable_lines,
    proposal_schema,
    settable,
    setting_edits,
)
from nanoresearch.trials.task import SearchRange


@pytest.fixture
def recipe(tmp_path):
    (tmp_path / "train.py").write_text("def main():\n    lr = 0.1\n    epochs = 3\n\nmain()\n")
    return tmp_path


def test_edits_replace_whole_lines_and_keep_indentation(recipe):
    touched = apply_edits(recipe, ["train.py"], [Edit(find="    lr = 0.1", replace="lr = 0.05")])
    assert touched == ["train.py"]
    assert "    lr = 0.05\n" in (recipe / "train.py").read_text()


def test_two_edits_of_one_line_keep_the_first(recipe):
    apply_edits(recipe, ["train.py"], [Edit(find="    lr = 0.1", replace="lr = 0.2"), Edit(find="    lr = 0.1", replace="lr = 9")])
    assert "lr = 0.2" in (recipe / "train.py").read_text() and "lr = 9" not in (recipe / "train.py").read_text()


def test_an_unknown_line_is_an_edit_error_and_nothing_is_written(recipe):
    before = (recipe / "train.py").read_text()
    with pytest.raises(EditError):
        apply_edits(recipe, ["train.py"], [Edit(find="    lr = 0.1", replace="lr = 1"), Edit(find="nope", replace="x")])
    assert (recipe / "train.py").read_text() == before


def test_the_schema_offers_only_existing_lines(recipe):
    lines = editable_lines(recipe, ["train.py"])
    assert lines == ["def main():", "    lr = 0.1", "    epochs = 3", "main()"]
    assert proposal_schema(lines)["$defs"]["Edit"]["properties"]["find"]["enum"] == lines


DIGITS_LIKE = '''"""Recipe: logistic regression on the digits — «baseline»."""
import os

MAX_ITER = int(os.environ.get("MAX_ITER", "10"))


def main():
    model = LogisticRegression(max_iter=MAX_ITER, tol=1e-4)
    path = "C:\\\\data\\\\digits"
    model.fit(X, y)
'''


@pytest.fixture
def hostile(tmp_path):
    (tmp_path / "train.py").write_text(DIGITS_LIKE, encoding="utf-8")
    return tmp_path


def test_a_block_whose_indent_the_model_dropped_is_found_and_reindented(hostile):
    apply_edits(hostile, ["train.py"], [Edit(find="model = LogisticRegression(max_iter=MAX_ITER, tol=1e-4)",
                                            replace="model = LogisticRegression(max_iter=100, tol=1e-4)")])
    assert "    model = LogisticRegression(max_iter=100, tol=1e-4)\n" in (hostile / "train.py").read_text()


def test_a_multi_line_block_is_replaced_keeping_relative_indents(hostile):
    find = "    model = LogisticRegression(max_iter=MAX_ITER, tol=1e-4)\n    path = \"C:\\\\data\\\\digits\""
    replace = "model = LogisticRegression(max_iter=200)\nif True:\n    path = 'x'"
    apply_edits(hostile, ["train.py"], [Edit(find=find, replace=replace)])
    text = (hostile / "train.py").read_text()
    assert "    model = LogisticRegression(max_iter=200)\n    if True:\n        path = 'x'\n    model.fit(X, y)\n" in text


def test_line_numbers_copied_from_the_listing_are_ignored(hostile):
    apply_edits(hostile, ["train.py"], [Edit(find="   4  MAX_ITER = int(os.environ.get(\"MAX_ITER\", \"10\"))",
                                            replace="MAX_ITER = int(os.environ.get(\"MAX_ITER\", \"300\"))")])
    assert 'MAX_ITER = int(os.environ.get("MAX_ITER", "300"))\n' in (hostile / "train.py").read_text()


def test_a_slightly_misquoted_line_is_matched_fuzzily(hostile):
    apply_edits(hostile, ["train.py"], [Edit(find="MAX_ITER = int(os.environ.get('MAX_ITER', '10'))",
                                            replace="MAX_ITER = 50")])
    assert "MAX_ITER = 50\n" in (hostile / "train.py").read_text()


def test_quotes_triple_quotes_backslashes_and_non_ascii_match_exactly(hostile):
    apply_edits(hostile, ["train.py"], [
        Edit(find='"""Recipe: logistic regression on the digits — «baseline»."""', replace='"""Recipe — «tuned»."""'),
        Edit(find='    path = "C:\\\\data\\\\digits"', replace='    path = "D:\\\\données"'),
    ])
    text = (hostile / "train.py").read_text(encoding="utf-8")
    assert text.startswith('"""Recipe — «tuned»."""\n') and '    path = "D:\\\\données"\n' in text


def test_no_match_names_the_closest_lines_and_writes_nothing(hostile):
    before = (hostile / "train.py").read_text()
    with pytest.raises(EditError) as caught:
        apply_edits(hostile, ["train.py"], [Edit(find="clf = SVC(C=1.0)", replace="clf = SVC(C=10.0)")])
    assert "closest" in str(caught.value) and "train.py" in str(caught.value)
    assert (hostile / "train.py").read_text() == before


def test_an_ambiguous_block_asks_for_a_neighbouring_line(tmp_path):
    (tmp_path / "train.py").write_text("a = 1\nx = 0\nb = 2\nx = 0\n")
    with pytest.raises(EditError, match="occur 2 times"):
        apply_edits(tmp_path, ["train.py"], [Edit(find="x = 0", replace="x = 1")])
    apply_edits(tmp_path, ["train.py"], [Edit(find="b = 2\nx = 0", replace="b = 2\nx = 1")])
    assert (tmp_path / "train.py").read_text() == "a = 1\nx = 0\nb = 2\nx = 1\n"


def test_servers_get_a_plain_string_for_find(hostile):
    assert proposal_schema()["$defs"]["Edit"]["properties"]["find"] == {"maxLength": 2000, "title": "Find", "type": "string"}


COMMENTED = 'import os\n\n# Knobs arrive as environment variables.\nMAX_ITER = int(os.environ.get("MAX_ITER", "10"))\nSEED = 0\n'


@pytest.mark.parametrize("replace", ['MAX_ITER = int(os.environ.get("MAX_ITER", "100"))',
                                     '# Knobs arrive as environment variables.\nMAX_ITER = int(os.environ.get("MAX_ITER", "100"))'])
def test_a_comment_replaced_by_the_assignment_below_it_means_that_line(tmp_path, replace):
    (tmp_path / "train.py").write_text(COMMENTED)
    apply_edits(tmp_path, ["train.py"], [Edit(find="# Knobs arrive as environment variables.", replace=replace)])
    # one assignment, the new one, under the comment (not a dead copy above the old one)
    assert (tmp_path / "train.py").read_text() == COMMENTED.replace('"10"', '"100"')


@pytest.mark.parametrize("replace", ["# Knobs arrive from the environment.", "import sys", 'SEED = 1'])
def test_a_comment_replaced_by_anything_else_is_replaced_as_named(tmp_path, replace):
    (tmp_path / "train.py").write_text(COMMENTED)
    apply_edits(tmp_path, ["train.py"], [Edit(find="# Knobs arrive as environment variables.", replace=replace)])
    assert (tmp_path / "train.py").read_text() == COMMENTED.replace("# Knobs arrive as environment variables.", replace)


DIABETES_LIKE = ('NEIGHBOURS = int(float(os.environ.get("NEIGHBOURS", "1")))\n'
                 'POWER = float(os.environ.get("POWER", "2"))  # the Minkowski distance\'s p\n'
                 "model = KNeighborsRegressor(n_neighbors=NEIGHBOURS, p=POWER)\n")


@pytest.mark.parametrize(("find", "replace", "line"), [
    # the piece a 1.5B copied, quote marks changed, to change a default: only the piece is replaced
    ("int(float(os.environ.get('NEIGHBOURS', '1'))", "int(float(os.environ.get('NEIGHBOURS', '30'))",
     "NEIGHBOURS = int(float(os.environ.get('NEIGHBOURS', '30')))"),
    # the line without its comment: the comment stays
    ("POWER = float(os.environ.get('POWER', '2'))", "POWER = 1.0",
     "POWER = 1.0  # the Minkowski distance's p"),
    ("n_neighbors=NEIGHBOURS, p=POWER", "n_neighbors=25, p=1", "model = KNeighborsRegressor(n_neighbors=25, p=1)"),
])
def test_a_piece_of_one_line_is_replaced_in_place(tmp_path, find, replace, line):
    (tmp_path / "train.py").write_text(DIABETES_LIKE)
    apply_edits(tmp_path, ["train.py"], [Edit(find=find, replace=replace)])
    assert line in (tmp_path / "train.py").read_text().splitlines()


@pytest.mark.parametrize("find", [
    'os.environ.get("',  # in two lines
    "OURS = int(float(",  # starts inside the name NEIGHBOURS
    "n_neighbors=NEIGH",  # ends inside it
    "p=POWER",  # too short to name a place reliably
])
def test_a_piece_that_is_not_one_whole_place_is_not_guessed(tmp_path, find):
    (tmp_path / "train.py").write_text(DIABETES_LIKE)
    with pytest.raises(EditError):
        apply_edits(tmp_path, ["train.py"], [Edit(find=find, replace="x")])
    assert (tmp_path / "train.py").read_text() == DIABETES_LIKE


KNOBS = ('import os\nNEIGHBOURS = int(float(os.environ.get("NEIGHBOURS", "1")))  # neighbours\n'
         "LR = float(os.getenv('LR', '0.05'))\nWIDTH = 32\n")
SPACE = {"NEIGHBOURS": SearchRange(min=1, max=60, integer=True), "LR": SearchRange(min=0.001, max=0.3, log=True),
         "WIDTH": SearchRange(min=8, max=64, integer=True)}


def test_a_named_value_becomes_the_edit_of_the_default_that_the_recipe_reads(tmp_path):
    (tmp_path / "train.py").write_text(KNOBS)
    edits = setting_edits(tmp_path, ["train.py"], [Setting(name="NEIGHBOURS", value=29.6), Setting(name="LR", value=0.5)], SPACE)
    apply_edits(tmp_path, ["train.py"], edits)
    text = (tmp_path / "train.py").read_text()
    assert 'NEIGHBOURS = int(float(os.environ.get("NEIGHBOURS", "30")))  # neighbours\n' in text  # rounded, comment kept
    assert "LR = float(os.getenv('LR', '0.3'))\n" in text  # held to the declared range


@pytest.mark.parametrize(("name", "message"), [("DEPTH", "not a setting worth searching"), ("WIDTH", "no lines of train.py read WIDTH")])
def test_a_value_for_an_undeclared_or_unread_setting_is_an_edit_error(tmp_path, name, message):
    (tmp_path / "train.py").write_text(KNOBS)
    with pytest.raises(EditError, match=message):
        setting_edits(tmp_path, ["train.py"], [Setting(name=name, value=3)], SPACE)


def test_settings_are_offered_only_when_named_and_then_come_before_the_edits():
    plain = proposal_schema()
    assert list(plain["properties"]) == ["hypothesis", "edits"] and "Setting" not in plain["$defs"]
    assert plain["properties"]["edits"]["minItems"] == 1  # as before settings existed: recordings replay
    offered = proposal_schema(settable=["NEIGHBOURS", "POWER"])
    assert list(offered["properties"]) == ["hypothesis", "settings", "edits"]
    assert "settings" not in offered["required"]  # a proposal of edits alone, as before, is still one
    assert offered["$defs"]["Setting"]["properties"]["name"]["enum"] == ["NEIGHBOURS", "POWER"]
    assert offered["properties"]["edits"].get("minItems", 0) == 0  # values alone are a proposal


def test_a_value_the_recipe_has_already_is_no_edit(tmp_path):
    (tmp_path / "train.py").write_text(KNOBS)
    assert setting_edits(tmp_path, ["train.py"], [Setting(name="NEIGHBOURS", value=1)], SPACE) == []


def test_only_settings_a_line_reads_may_be_named(tmp_path):
    (tmp_path / "train.py").write_text(KNOBS)
    assert settable(tmp_path, ["train.py"], SPACE) == ["NEIGHBOURS", "LR"]


def test_two_settings_read_on_one_line_both_take_effect(tmp_path):
    (tmp_path / "train.py").write_text('import os\nA, B = os.environ.get("A", "1"), os.environ.get("B", "2")\n')
    space = {"A": SearchRange(min=0, max=9, integer=True), "B": SearchRange(min=0, max=9, integer=True)}
    apply_edits(tmp_path, ["train.py"], setting_edits(tmp_path, ["train.py"], [Setting(name="A", value=3), Setting(name="B", value=4)], space))
    assert 'A, B = os.environ.get("A", "3"), os.environ.get("B", "4")' in (tmp_path / "train.py").read_text()


def test_a_setting_read_by_two_lines_is_not_offered_and_not_guessed(tmp_path):
    (tmp_path / "train.py").write_text(KNOBS)
    (tmp_path / "other.py").write_text(KNOBS)
    assert settable(tmp_path, ["train.py", "other.py"], SPACE) == []
    with pytest.raises(EditError, match="2 lines of train.py, other.py read LR"):
        setting_edits(tmp_path, ["train.py", "other.py"], [Setting(name="LR", value=0.1)], SPACE)


def test_without_settings_the_schema_is_the_one_before_settings_existed_key_order_included():
    # The prompt shows the schema as text, so a key out of order misses every recorded call.
    class Before(BaseModel):
        model_config = ConfigDict(title="Proposal")
        hypothesis: str = Field(max_length=400)
        edits: list[Edit] = Field(min_length=1, max_length=3)

    assert json.dumps(proposal_schema()) == json.dumps(Before.model_json_schema())
    recording = Path(__file__).parents[1] / "pipeline" / "recorded" / "digits-qwen2.5-coder-1.5b.json"
    recorded = next(c for c in json.loads(recording.read_text())["calls"] if c["stage"] == "coding")
    assert json.dumps(proposal_schema(), sort_keys=True) == json.dumps(recorded["request"]["json_schema"], sort_keys=True)
