"""On Ray a trial is stopped at its share of the budget and labelled budget_overrun, like a local one."""

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nanoresearch[ray]'); CI installs it")

from helpers import ScriptedProvider  # noqa: E402
from nanoresearch.compute.budget import Budget, spent  # noqa: E402
from nanoresearch.trials.task import load_task  # noqa: E402
from trials.tiny import make_loop, proposal, write_tiny_task  # noqa: E402

pytestmark = pytest.mark.slow


def test_a_trial_is_stopped_at_its_budget_share_on_ray(store, tmp_path, monkeypatch):
    if ray.is_initialized():
        pytest.fail("Ray is already initialised in this process: this test starts a cluster of its own")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    task = load_task(write_tiny_task(tmp_path / "tiny-task"))
    task.resources.time_s = 120
    provider = ScriptedProvider(proposal("slow", ('print("working")', "import time; time.sleep(100)")))
    loop = make_loop(store, task, provider, Budget(cpu_hours=8 / 3600, trials=2), tmp_path, executor="ray", max_debug=0)
    try:
        loop.run()
    finally:
        loop.executor.close()
    baseline, slow = store.trials(loop.run_id)
    assert (baseline.executor, baseline.status) == ("ray", "done")
    assert slow.failure == "budget_overrun" and slow.resources["time_s"] < 8, slow.detail
    assert spent(store, loop.user_id, loop.run_id).cpu_hours * 3600 <= 8 + 1
