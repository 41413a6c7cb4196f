"""The executor plug point: executors by name, and what the protocol asks of every executor."""

import pytest

from nanoresearch.compute.executor import EXECUTORS, Executor, create_executor
from nanoresearch.compute.local import LocalExecutor
from nanoresearch.compute.ray_executor import RayExecutor
from nanoresearch.compute.slurm import SlurmExecutor
from nanoresearch.config import Settings
from nanoresearch.errors import ConfigError


def test_an_unknown_executor_lists_the_known_ones(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="unknown executor 'slurmm'") as caught:
        create_executor("slurmm", settings)
    assert caught.value.hint is not None and "known executors: local, ray, slurm" in caught.value.hint
    assert "--executor" in caught.value.hint and caught.value.exit_code == 2


def test_the_builtins_are_registered_by_name(settings: Settings) -> None:
    assert {"local", "ray", "slurm"} <= set(EXECUTORS.names())
    assert isinstance(create_executor("local", settings), LocalExecutor)


@pytest.mark.parametrize("executor_class", [LocalExecutor, RayExecutor, SlurmExecutor])
def test_every_builtin_executor_implements_the_whole_protocol(executor_class: type) -> None:
    # attach included: the trial loop calls it on any executor when it resumes.
    for method in (name for name in vars(Executor) if not name.startswith("_") and callable(getattr(Executor, name))):
        assert callable(getattr(executor_class, method, None)), f"{executor_class.__name__} lacks {method}"
