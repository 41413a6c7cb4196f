import pytest

from nanoresearch.trials.proposals import Edit, EditError, apply_edits, editable_lines, proposal_schema


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
