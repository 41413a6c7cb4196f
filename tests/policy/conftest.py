import pytest

from nanoresearch.config import Settings, load_settings
from nanoresearch.llm.local_model import load_hf_folder
from tiny_planner import write_tiny_planner


@pytest.fixture(scope="session")
def tiny_planner_dir(tmp_path_factory):
    return write_tiny_planner(tmp_path_factory.mktemp("tiny-planner"))


@pytest.fixture(scope="session")
def tiny_lm(tiny_planner_dir):
    """For tokenizing only: training and the planner load their own copies."""
    return load_hf_folder(tiny_planner_dir)


@pytest.fixture
def policy_settings(home, tiny_planner_dir) -> Settings:
    return load_settings({
        "stages": {"planner": {"model": str(tiny_planner_dir)}},
        "policy": {"steps": 6, "lr": 0.02, "lora_r": 4, "lora_alpha": 8, "min_relevance": 0.0, "replay": 2,
                   "drift_kl_max": 100.0, "drift_ppl_ratio_max": 100.0},
    })
