"""Every route of the dashboard through FastAPI's TestClient, on the tiny world of conftest.py."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_world import DIFF, SCRIPT, World, add_trial, secret_from_run

from nanoresearch.runs import driving
from nanoresearch.web.app import create_app


@pytest.fixture
def client(world: World) -> TestClient:
    # Loopback base URL: without a token the app answers only requests addressed to localhost.
    return TestClient(create_app(world.settings), base_url="http://127.0.0.1")


def test_runs_list_shows_the_users_run_in_full_with_scores_and_costs(client: TestClient, world: World) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert f'href="/runs/{world.run.id}">{world.run.id}</a>' in page.text  # the id is never cut
    assert "experiment" in page.text  # current stage
    assert "0.7 / 0.5" in page.text  # best kept score vs the baseline
    assert "1234" in page.text and "0.2500" in page.text
    assert world.run.created_at in page.text


def test_runs_list_marks_a_driven_run_live_and_hides_other_users_runs(client: TestClient, world: World) -> None:
    assert 'class="badge live"' not in client.get("/").text  # marked running, but no process drives it
    with driving(world.run):
        page = client.get("/").text
    assert 'class="badge live"' in page
    assert world.other.id not in page and "private goal" not in page


def test_run_page_has_timeline_budget_log_figures_paper_and_lineage(client: TestClient, world: World) -> None:
    page = client.get(f"/runs/{world.run.id}").text
    assert '<tr class="stage done"><td>ideation</td>' in page
    assert '<tr class="stage running"><td>experiment</td>' in page
    assert "<td>tokens</td><td>1234</td>" in page and "<td>usd</td><td>0.25</td>" in page
    assert "&#34;event&#34;: &#34;start&#34;" in page  # the log tail, escaped
    assert f'src="/runs/{world.run.id}/files/figures/curve.svg"' in page
    assert f'href="/runs/{world.run.id}/files/paper.pdf"' in page
    for trial in (world.baseline, world.kept, world.failed):
        assert f'href="/runs/{world.run.id}/trials/{trial.id}"' in page


def test_lineage_tells_kept_failed_and_head_apart(client: TestClient, world: World) -> None:
    page = client.get(f"/runs/{world.run.id}").text
    assert f'class="node kept head" data-trial="{world.kept.id}"' in page
    assert f'class="node kept" data-trial="{world.baseline.id}"' in page
    assert f'class="node failed" data-trial="{world.failed.id}"' in page
    assert ">oom</text>" in page  # the failure label on the failed node


def test_trial_page_shows_hypothesis_diff_command_resources_score_metrics_logs(client: TestClient, world: World) -> None:
    page = client.get(f"/runs/{world.run.id}/trials/{world.kept.id}").text
    assert '<span class="add">+lr = 0.05</span>' in page
    assert '<span class="del">-lr = 0.1</span>' in page
    assert '<span class="meta">+++ b/train.py</span>' in page
    assert '<code class="command">python train.py</code>' in page
    assert "cpus=1" in page and "acc=0.7" in page and "0.7 (kept)" in page
    assert "epoch 1" in page
    assert f'class="node kept head selected" data-trial="{world.kept.id}"' in page
    assert DIFF.splitlines()[0] in page


def test_timeline_fragment_is_the_live_part_alone(client: TestClient, world: World) -> None:
    fragment = client.get(f"/runs/{world.run.id}/timeline").text
    assert "<td>experiment</td>" in fragment and "<html" not in fragment


def test_run_text_is_escaped_everywhere(client: TestClient, world: World) -> None:
    """The goal, a log line, a hypothesis and a trial's logs all hold <script>: none comes out as markup."""
    escaped = html.escape(SCRIPT, quote=True)
    for url in ("/", f"/runs/{world.run.id}", f"/runs/{world.run.id}/timeline",
                f"/runs/{world.run.id}/trials/{world.kept.id}", f"/runs/{world.run.id}/paper",
                f"/compare?run={world.run.id}&run={world.second.id}"):
        page = client.get(url).text
        assert SCRIPT not in page, url
        assert "<script>window" not in page, url
        assert escaped.replace("&#x27;", "&#39;") in page or "&lt;script&gt;" in page, url


def test_pages_forbid_inline_scripts(client: TestClient, world: World) -> None:
    policy = client.get(f"/runs/{world.run.id}").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]


def test_artifacts_are_served_with_a_type_and_a_sandbox(client: TestClient, world: World) -> None:
    svg = client.get(f"/runs/{world.run.id}/files/figures/curve.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["content-security-policy"].startswith("sandbox")
    log = client.get(f"/runs/{world.run.id}/files/log.jsonl")
    assert log.headers["content-type"].startswith("text/plain")
    (Path(world.run.workspace) / "page.html").write_text("<script>alert(1)</script>")
    page = client.get(f"/runs/{world.run.id}/files/page.html")
    assert page.headers["content-type"] == "application/octet-stream"
    assert page.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize("url", [
    "/runs/{other}", "/runs/{other}/timeline", "/runs/{other}/events", "/runs/{other}/files/secret.txt",
    "/runs/{other}/trials/{other_trial}", "/runs/{run}/trials/{other_trial}", "/runs/no-such-run",
    "/runs/{run}/trials/999999", "/runs/{other}/budget", "/runs/{other}/paper", "/runs/{other}/files/secret.txt",
    "/compare?run={run}&run={other}",
])
def test_another_users_things_and_missing_ones_answer_404(client: TestClient, world: World, url: str) -> None:
    filled = url.format(other=world.other.id, run=world.run.id, other_trial=world.other_trial.id)
    answer = client.get(filled)
    assert answer.status_code == 404
    assert "bob" not in answer.text


@pytest.mark.parametrize("relative", [
    "{outside_encoded}", "{outside_dots_encoded}", "figures%2F..%2F{outside_encoded}",
    "escape/secret.txt", "link.txt", "figures", "missing.png",
])
def test_artifact_urls_cannot_leave_the_workspace(client: TestClient, world: World, relative: str) -> None:
    workspace = Path(world.run.workspace)
    (workspace / "escape").symlink_to(world.other.workspace)  # a folder link pointing out
    (workspace / "link.txt").symlink_to(Path(world.other.workspace) / "secret.txt")  # a file link pointing out
    outside = secret_from_run(world)
    assert (Path(world.run.workspace) / outside).is_file()  # without the check the probe would find it
    filled = relative.format(outside_encoded=outside.replace("/", "%2F"),
                             outside_dots_encoded=outside.replace("..", "%2E%2E"))
    answer = client.get(f"/runs/{world.run.id}/files/{filled}")
    assert answer.status_code == 404
    assert "secret" not in answer.text


def test_an_absolute_artifact_path_is_refused(client: TestClient, world: World) -> None:
    answer = client.get(f"/runs/{world.run.id}/files//{world.other.workspace.lstrip('/')}/secret.txt")
    assert answer.status_code == 404


def test_stage_files_linked_out_of_the_workspace_are_not_read(client: TestClient, world: World) -> None:
    """A run that plants results.json, paper.tex or its log as a link to a file outside shows none of it."""
    outside = Path(world.other.workspace)
    (outside / "results.json").write_text((Path(world.run.workspace) / "results.json").read_text()
                                          .replace("0.675", "0.123456"))
    (outside / "paper.tex").write_text("bob's secret paper")
    for name, target in (("results.json", "results.json"), ("paper/paper.tex", "paper.tex"), ("log.jsonl", "secret.txt")):
        (Path(world.run.workspace) / name).unlink()
        (Path(world.run.workspace) / name).symlink_to(outside / target)
    pages = client.get(f"/runs/{world.run.id}").text + client.get(f"/runs/{world.run.id}/paper").text
    assert "0.123456" not in pages and "bob's secret" not in pages and "bob&#39;s secret" not in pages


def test_the_runs_list_shows_the_best_kept_score_in_the_runs_own_direction(client: TestClient, world: World) -> None:
    from nanoresearch.runs import new_run
    from nanoresearch.store.models import RunOptions

    alice = world.store.ensure_user("alice")
    run = new_run(world.store, world.settings, alice, "loss", "lower the loss", RunOptions(direction="minimize"),
                  kind="trials")
    add_trial(world.store, run, proposer="baseline", score=0.9, kept=True)
    add_trial(world.store, run, score=0.3, kept=True)
    add_trial(world.store, run, score=0.1, kept=False)  # lower, but reverted: not the head
    row = client.get("/").text.split(f'href="/runs/{run.id}"')[1].split("</tr>")[0]
    assert "<td>0.3 / 0.9</td>" in row and '<td class="kind">trials</td>' in row


def listed(page: str) -> list[str]:
    import re

    return re.findall(r'<td class="id"><a href="/runs/([^"]+)">', page)


def test_the_runs_list_filters_sorts_and_shows_the_newest_page(client: TestClient, world: World) -> None:
    assert listed(client.get("/").text) == [world.second.id, world.run.id]  # newest first
    assert listed(client.get("/", params={"q": "SECOND"}).text) == [world.second.id]
    assert listed(client.get("/", params={"status": "interrupted"}).text) == [world.run.id]
    assert listed(client.get("/", params={"sort": "tokens"}).text) == [world.run.id, world.second.id]
    assert listed(client.get("/", params={"sort": "best"}).text) == [world.run.id, world.second.id]  # 0.7 > 0.4
    one = client.get("/", params={"limit": 1}).text
    assert listed(one) == [world.second.id] and "1 of 2 runs shown" in one and "limit=2\">show all</a>" in one


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": "many"}, {"sort": "goal; drop table"}])
def test_a_bad_runs_list_query_is_refused_with_the_reason(client: TestClient, query: dict) -> None:
    answer = client.get("/", params=query)
    assert answer.status_code == 400 and answer.text.startswith("bad request: ") and "Traceback" not in answer.text
