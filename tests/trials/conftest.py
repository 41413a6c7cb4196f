import pytest
from tiny import write_tiny_task

from nanoresearch.trials.task import load_task


@pytest.fixture
def tiny_folder(tmp_path):
    return write_tiny_task(tmp_path / "tiny-task")


@pytest.fixture
def tiny_task(tiny_folder):
    return load_task(tiny_folder)
