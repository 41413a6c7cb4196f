"""Plug-ins by entry point. Each test installs a real (if tiny) distribution into the test
environment: a `*.dist-info` folder with `entry_points.txt` beside the plug-in's module, in a
folder put on sys.path. NanoResearch then uses the plug-in from config.toml and the command line
exactly as it would use one installed with pip; a broken plug-in is reported, never a traceback."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import run_cli
from nanoresearch.compute.executor import EXECUTORS, JobSpec, JobState, create_executor
from nanoresearch.config import load_settings
from nanoresearch.doctor import run_checks
from nanoresearch.errors import ConfigError
from nanoresearch.literature import create_source, search_literature, source_names
from nanoresearch.llm.provider import PROVIDERS, provider_kinds
from nanoresearch.plugins import PluginError, Registry
from nanoresearch.store import Store

ECHO_PROVIDER = '''
from nanoresearch.llm.provider import LLMResponse


class EchoProvider:
    """Answers with the last message it was sent: a provider that needs no server."""

    def __init__(self, name):
        self.name = name

    def complete(self, request):
        said = request.messages[-1].content
        return LLMResponse(text=f"{request.model} heard: {said}", prompt_tokens=len(said.split()), completion_tokens=3)


def make_provider(name, endpoint, ctx):
    return EchoProvider(name)
'''

SHELF_SOURCE = '''
from nanoresearch.literature import make_paper

SHELF = [("Attention is all you need", 2017), ("Deep residual learning for image recognition", 2016)]


class Shelf:
    """A few papers kept in the code: a literature source that needs no network."""

    name = "shelf-test"

    def search(self, query, limit=10):
        words = query.lower().split()
        found = [(title, year) for title, year in SHELF if any(word in title.lower() for word in words)]
        return [make_paper(source=self.name, title=title, year=year) for title, year in found[:limit]]


def make_source(options):
    return Shelf()
'''

INLINE_EXECUTOR = '''
import os
import subprocess
import time

from nanoresearch.compute.executor import JobState, JobStatus, log_paths


class InlineExecutor:
    """Runs each job to its end inside submit, unsandboxed: the smallest executor there is."""

    name = "inline-test"

    def __init__(self, settings):
        self.jobs = {}
        self.workdirs = {}

    def submit(self, spec):
        stdout, stderr = log_paths(spec.workdir)
        stdout.parent.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ["PATH"], **spec.env}
        started = time.time()
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            code = subprocess.run(["/bin/sh", "-c", spec.command], cwd=spec.workdir, env=env, stdout=out,
                                  stderr=err, timeout=spec.resources.time_s).returncode
        job_id = f"inline-{len(self.jobs) + 1}"
        self.workdirs[job_id] = spec.workdir
        state = JobState.COMPLETED if code == 0 else JobState.FAILED
        self.jobs[job_id] = JobStatus(job_id=job_id, state=state, exit_code=code, started_at=started,
                                      ended_at=time.time())
        return job_id

    def poll(self, job_id):
        return self.jobs.get(job_id) or JobStatus(job_id=job_id, state=JobState.LOST)

    def wait(self, job_id, timeout_s=None):
        return self.poll(job_id)

    def cancel(self, job_id):
        pass  # every job has ended by the time submit returns

    def logs(self, job_id):
        return "".join(path.read_text() for path in log_paths(self.workdirs[job_id]))

    def attach(self, job_id):
        return None  # jobs end inside submit: none outlives this process


def make_executor(settings):
    return InlineExecutor(settings)
'''

TINY_TASK = textwrap.dedent(
    """\
    name = "tiny"
    command = "python train.py"
    [score]
    metric = "score"
    [evaluator]
    command = "python evaluate.py"
    files = ["evaluate.py"]
    [legality]
    editable = ["train.py"]
    """
)
TINY_RECIPE = 'import json\njson.dump({"value": 3}, open("out.json", "w"))\n'
TINY_EVALUATOR = (
    "import json, os\n"
    'value = json.load(open(os.path.join(os.environ["NANORESEARCH_TRIAL_DIR"], "out.json")))["value"]\n'
    'print(json.dumps({"score": value}))\n'
)


@dataclass
class PluginSite:
    """A folder on sys.path that distributions are installed into, as pip would into site-packages."""

    folder: Path
    modules: list[str] = field(default_factory=list)

    def install(self, distribution: str, module: str, source: str, entry_points: dict[str, dict[str, str]]) -> None:
        (self.folder / f"{module}.py").write_text(source)
        info = self.folder / f"{distribution.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
        sections = (
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in names.items())
            for group, names in entry_points.items()
        )
        (info / "entry_points.txt").write_text("\n".join(sections))
        self.modules.append(module)
        importlib.invalidate_caches()


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginSite]:
    site = PluginSite(tmp_path / "site-packages")
    site.folder.mkdir()
    monkeypatch.syspath_prepend(str(site.folder))
    yield site
    for module in site.modules:  # so that no later test imports this test's plug-ins
        sys.modules.pop(module, None)


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


def install_echo(plugins: PluginSite) -> None:
    plugins.install("nanoresearch-echo", "nanoresearch_echo", ECHO_PROVIDER,
                    {"nanoresearch.providers": {"echo-test": "nanoresearch_echo:make_provider"}})


# ---------------------------------------------------------------- providers


def test_a_provider_plugin_configured_in_config_toml_answers_through_the_cli(plugins, home, capsys, monkeypatch):
    install_echo(plugins)
    write_config(home, '[endpoints.echo]\nkind = "echo-test"\ndefault_model = "echo-1"\n')
    result = run_cli(capsys, monkeypatch, "llm", "ask", "--provider", "echo", "hello plug-ins")
    assert result.code == 0, result.err
    assert "echo-1 heard: hello plug-ins" in result.out
    with Store(home / "nanoresearch.db") as store:  # recorded like any other call, under the endpoint's name
        calls = store.llm_calls(store.ensure_user("alice"))
    assert [(call.provider, call.model) for call in calls] == [("echo", "echo-1")]
    assert "echo-test" in provider_kinds()


def test_an_unknown_provider_kind_stops_before_any_call_and_says_what_to_fix(home, capsys, monkeypatch):
    path = write_config(home, '[endpoints.mine]\nkind = "ecko"\n')
    # Another endpoint is asked: the typo still stops the command, before anything is called.
    result = run_cli(capsys, monkeypatch, "llm", "ask", "--provider", "openai", "hi")
    assert result.code == 2
    assert "unknown provider kind 'ecko' for endpoint 'mine' (endpoints.mine.kind)" in result.err
    assert str(path) in result.err and "anthropic, local, openai" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import nanoresearch_missing_dependency\n",
         "failed with ModuleNotFoundError: No module named 'nanoresearch_missing_dependency'"),
        ("raise RuntimeError('needs a licence file\\nsecond line')\n", "failed with RuntimeError: needs a licence file"),
        ("make_provider = 'not a function'\n", "names a str, not a factory"),
    ],
)
def test_a_broken_provider_plugin_is_named_and_the_others_still_work(plugins, home, capsys, monkeypatch, source,
                                                                     problem):
    install_echo(plugins)
    plugins.install("nanoresearch-broken", "nanoresearch_broken", source,
                    {"nanoresearch.providers": {"broken-test": "nanoresearch_broken:make_provider"}})
    write_config(home, '[endpoints.broken]\nkind = "broken-test"\n[endpoints.echo]\nkind = "echo-test"\n')

    broken = run_cli(capsys, monkeypatch, "llm", "ask", "--provider", "broken", "--model", "m", "hi")
    assert broken.code == 2
    assert "the provider kind plug-in 'broken-test'" in broken.err
    assert "entry point `broken-test = nanoresearch_broken:make_provider`" in broken.err
    assert "the distribution nanoresearch-broken 0.1" in broken.err and problem in broken.err
    assert "second line" not in broken.err and "Traceback" not in broken.err

    working = run_cli(capsys, monkeypatch, "llm", "ask", "--provider", "echo", "--model", "m", "still here")
    assert working.code == 0 and "m heard: still here" in working.out


def test_doctor_leaves_a_plugin_endpoint_alone(home):
    # It probes the APIs it knows; a plug-in endpoint used to be probed as if it were Anthropic's.
    write_config(home, '[endpoints.echo]\nkind = "echo-test"\n')
    names = [check.name for check in run_checks(load_settings(), load_model=False)]
    assert "endpoint openai (openai)" in names and not [name for name in names if "echo" in name]


def test_a_plugin_cannot_replace_a_builtin(plugins):
    builtin = PROVIDERS.lookup("openai")
    plugins.install("nanoresearch-impostor", "nanoresearch_impostor", ECHO_PROVIDER,
                    {"nanoresearch.providers": {"openai": "nanoresearch_impostor:make_provider"}})
    assert PROVIDERS.lookup("openai") is builtin
    assert "nanoresearch_impostor" not in sys.modules


# ---------------------------------------------------------------- literature sources and executors


def test_a_literature_source_plugin_is_searched_by_name(plugins, tmp_path):
    plugins.install("nanoresearch-shelf", "nanoresearch_shelf", SHELF_SOURCE,
                    {"nanoresearch.sources": {"shelf-test": "nanoresearch_shelf:make_source"}})
    assert "shelf-test" in source_names()
    assert [p.title for p in create_source("shelf-test").search("residual")] == [
        "Deep residual learning for image recognition"
    ]
    papers = search_literature(["attention"], offline=False, corpus=None, cache_dir=tmp_path / "cache",
                               sources=["shelf-test"])
    assert [(p.title, p.year, p.source) for p in papers] == [("Attention is all you need", 2017, "shelf-test")]


def test_an_executor_plugin_runs_the_trials_of_trials_run(plugins, home, tmp_path, capsys, monkeypatch):
    plugins.install("nanoresearch-inline", "nanoresearch_inline", INLINE_EXECUTOR,
                    {"nanoresearch.executors": {"inline-test": "nanoresearch_inline:make_executor"}})
    task = tmp_path / "task"
    task.mkdir()
    for name, text in (("task.toml", TINY_TASK), ("train.py", TINY_RECIPE), ("evaluate.py", TINY_EVALUATOR)):
        (task / name).write_text(text)

    result = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(task), "--executor", "inline-test",
                     "--budget", "trials=1")
    assert result.code == 0, result.err
    assert "(inline-test executor)" in result.err and "best: trial 1, score = 3" in result.out
    exported = json.loads(run_cli(capsys, monkeypatch, "trials", "export", "--format", "json").out)
    assert [(row["executor"], row["job_id"], row["score"]) for row in exported] == [("inline-test", "inline-1", 3.0)]


def test_an_executor_plugin_is_made_by_create_executor(plugins, settings, tmp_path):
    plugins.install("nanoresearch-inline", "nanoresearch_inline", INLINE_EXECUTOR,
                    {"nanoresearch.executors": {"inline-test": "nanoresearch_inline:make_executor"}})
    assert "inline-test" in EXECUTORS.names()
    executor = create_executor("inline-test", settings)
    workdir = tmp_path / "job"
    workdir.mkdir()
    job = executor.submit(JobSpec(name="hello", workdir=workdir, command="echo hello > out.txt"))
    assert executor.wait(job).state is JobState.COMPLETED and (workdir / "out.txt").read_text() == "hello\n"
    assert executor.attach(job) is None


# ---------------------------------------------------------------- the registry itself


def test_unknown_names_list_the_known_ones_and_plugins_are_imported_only_when_used(plugins):
    plugins.install("nanoresearch-widgets", "nanoresearch_widgets", "raise ImportError('not now')\n",
                    {"nanoresearch.test-widgets": {"gear": "nanoresearch_widgets:make"}})
    widgets: Registry = Registry("nanoresearch.test-widgets", "widget")
    widgets.register("cog")(lambda: "cog")

    assert widgets.names() == ["cog", "gear"]
    assert "nanoresearch_widgets" not in sys.modules  # listed from the metadata alone
    with pytest.raises(ConfigError) as unknown:
        widgets.lookup("sprocket", where=" for the gearbox", fix="pick one")
    assert unknown.value.message == "unknown widget 'sprocket' for the gearbox"
    assert unknown.value.hint == "known widgets: cog, gear; pick one" and unknown.value.exit_code == 2
    with pytest.raises(PluginError, match="ImportError: not now"):
        widgets.lookup("gear")
