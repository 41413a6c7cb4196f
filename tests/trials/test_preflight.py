"""Crashes seen before a trial runs: only certain ones, worded as Python raises them, found without importing."""

from nanoresearch.trials.preflight import problems


def _recipe(tmp_path, source: str, name: str = "train.py") -> list[str]:
    (tmp_path / name).write_text(source)
    return [str(problem) for problem in problems(tmp_path, [name])]


def test_a_syntax_error_is_found_and_quoted_as_a_traceback(tmp_path):
    (tmp_path / "train.py").write_text("import os\nMAX_ITER = int(float(os.environ.get('MAX_ITER', '20'))\n")
    (found,) = problems(tmp_path, ["train.py"])
    assert str(found) == "train.py, line 2: SyntaxError: '(' was never closed"
    # the offending line quoted, as Python prints it: what a model copies its `find` from
    assert found.as_traceback() == ('  File "train.py", line 2\n'
                                    "    MAX_ITER = int(float(os.environ.get('MAX_ITER', '20'))\n"
                                    "SyntaxError: '(' was never closed")


def test_a_name_used_but_never_defined_is_found(tmp_path):
    assert _recipe(tmp_path, "x_train = [1, 2]\nprint(len(X_train))\n") == [
        "train.py, line 2: NameError: name 'X_train' is not defined"]


def test_untidy_but_runnable_code_passes(tmp_path):
    assert _recipe(tmp_path, "import os, json  # json unused\nvalue = 1\nvalue = 2\nprint(value, __file__)\n") == []


def test_a_module_that_does_not_exist_is_found_without_importing_its_package(tmp_path):
    found = _recipe(tmp_path, "from sklearn.convolutional import Conv2D\nimport sklearn.linear_model\nimport numpy as np\n")
    assert found == ["train.py, line 1: ModuleNotFoundError: No module named 'sklearn.convolutional'"]
    assert _recipe(tmp_path, "import surely_no_such_package_here\n") == [
        "train.py, line 1: ModuleNotFoundError: No module named 'surely_no_such_package_here'"]


def test_modules_beside_the_recipe_and_of_the_standard_library_are_found(tmp_path):
    (tmp_path / "data.py").write_text("SPLIT = 0.2\n")
    assert _recipe(tmp_path, "import data\nimport os.path\nfrom collections import abc\nimport sys\n") == []


def test_imports_are_not_judged_for_a_trial_on_another_interpreter(tmp_path):
    (tmp_path / "train.py").write_text("import package_only_on_the_cluster\n")
    assert problems(tmp_path, ["train.py"], imports=False) == []


def test_files_that_are_not_python_are_left_alone(tmp_path):
    (tmp_path / "config.yaml").write_text("lr: [\n")
    assert problems(tmp_path, ["config.yaml", "missing.py"]) == []
