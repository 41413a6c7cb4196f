"""End to end in a real headless Chromium (Debian's, driven by Playwright; never `playwright install`).

CI installs both; elsewhere these skip with the reason. Screenshots go under the test's tmp folder."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_world import World

CHROMIUM = Path("/usr/bin/chromium")
# No first-run UI and no background traffic: the tests must not try to reach the network.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="the playwright package is missing: pip install -e '.[dev]'"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install chromium"),
]


@pytest.fixture
def page(served: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        tab = browser.new_page(base_url=served, viewport={"width": 1200, "height": 900})
        tab.set_default_timeout(15_000)
        yield tab
        browser.close()


def test_the_runs_list_shows_the_run(page, world: World, tmp_path: Path) -> None:  # noqa: ANN001 - a Page
    page.goto("/")
    assert page.locator("#runs tr.run").count() == 2  # alice's two runs; bob's is not listed
    row = page.locator("#runs tr.run", has_text=world.run.id)
    assert row.locator("td.id").inner_text() == world.run.id
    assert "<script>" in row.inner_text()  # the goal's markup shown as text, not run
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=tmp_path / "runs.png", full_page=True)


def test_click_a_lineage_node_and_read_its_diff(page, world: World, tmp_path: Path) -> None:  # noqa: ANN001
    page.goto(f"/runs/{world.run.id}")
    page.locator(f'a.node[data-trial="{world.kept.id}"]').click()
    page.wait_for_url(f"**/trials/{world.kept.id}")
    assert page.locator("pre.diff .add").inner_text() == "+lr = 0.05"
    assert page.locator("pre.diff .del").inner_text() == "-lr = 0.1"
    assert "<script>" in page.locator(".hypothesis").inner_text()
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=tmp_path / "trial.png", full_page=True)


def test_a_new_step_reaches_the_open_page_without_a_reload(page, world: World, tmp_path: Path) -> None:  # noqa: ANN001
    page.goto(f"/runs/{world.run.id}")
    # a selector, not wait_for_function: the page's CSP forbids evaluating strings as script
    page.locator("#live[data-connected='yes']").wait_for(state="attached")
    page.evaluate("window.sameDocument = true")  # a reload would forget this
    world.store.save_step(world.run.id, "analysis", "tables", "running")
    page.locator("#live tr.stage", has_text="analysis").wait_for()
    assert page.evaluate("window.sameDocument") is True
    page.screenshot(path=tmp_path / "live.png", full_page=True)


def test_the_run_page_shows_plans_recalled_knowledge_ideas_and_results(page, world: World, tmp_path: Path) -> None:  # noqa: ANN001
    page.goto(f"/runs/{world.run.id}")
    panel = page.locator("#stage-ideation")
    assert panel.locator("tr.skill.used td").first.inner_text() == "lr-sweep v2"
    assert "<script>" in panel.locator("tr.memory").inner_text()  # recalled text shown as text
    assert page.locator("tr.idea.selected td.novelty").inner_text() == "0.75"
    assert page.locator("table.results td.ci").nth(1).inner_text() == "[0.675, 0.725]"
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=tmp_path / "run.png", full_page=True)


def test_the_budget_page_draws_spent_against_the_limit(page, world: World, tmp_path: Path) -> None:  # noqa: ANN001
    page.goto(f"/runs/{world.run.id}/budget")
    tokens = page.locator("#budget-total g.bar", has_text="tokens")
    assert tokens.locator("text.amount").text_content() == "1,234 / 2,000 tokens"  # SVG text: no inner_text
    spent, limit = (tokens.locator(f"rect.{kind}").bounding_box()["width"] for kind in ("spent", "limit"))
    assert abs(spent / limit - 1234 / 2000) < 0.01  # the drawn bar is the share of the limit
    assert page.locator("#budget-trials g.bar").count() == 2  # the kept trial's time and CPU-hours
    page.screenshot(path=tmp_path / "budget.png", full_page=True)


def test_a_number_in_the_paper_leads_to_its_source_in_results_json(page, world: World, tmp_path: Path) -> None:  # noqa: ANN001
    page.goto(f"/runs/{world.run.id}/paper")
    assert page.locator("iframe.pdf").get_attribute("src") == f"/runs/{world.run.id}/files/paper/paper.pdf"
    # The links are followed by a click event on them, not by a mouse at their coordinates: the PDF
    # viewer in the frame above can take a mouse click while it starts.
    page.locator("pre.tex a.number", has_text="\\ResProposedMean").dispatch_event("click")
    page.wait_for_url("**#n-ResProposedMean")
    assert page.locator("tr:target td").nth(1).inner_text() == "0.700"
    page.locator("tr:target a.source").dispatch_event("click")
    page.wait_for_url("**#r/conditions/1/mean")
    assert page.locator("pre.json span:target").inner_text().strip() == '"mean": 0.7'
    page.screenshot(path=tmp_path / "paper.png", full_page=True)


def test_a_comment_from_the_page_is_stored(page, world: World, tmp_path: Path) -> None:  # noqa: ANN001
    page.goto(f"/runs/{world.run.id}")
    form = page.locator("#stage-ideation form.feedback-form")
    form.locator("textarea").fill("prefer linear models")
    form.locator("button[value=comment]").click()
    page.locator("#stage-ideation p.feedback.comment").wait_for()
    assert page.url.endswith("#stage-ideation")
    (stored,) = world.store.feedback(world.store.ensure_user("alice"), world.run.id)
    assert (stored.stage, stored.text) == ("ideation", "prefer linear models")
    page.screenshot(path=tmp_path / "feedback.png", full_page=True)


@pytest.mark.slow  # one SDPO round on the tiny planner
def test_a_comment_trains_a_new_adapter_version_shown_on_the_knowledge_page(page, dashboard, trainable: World,  # noqa: ANN001
                                                                             tmp_path: Path) -> None:
    page.goto(f"/runs/{trainable.run.id}")
    form = page.locator("#stage-planning form.feedback-form")
    form.locator("textarea").fill("always include an ablation of each component")
    form.locator("button[value=comment]").click()
    page.locator("#stage-planning p.feedback.comment").wait_for()
    dashboard.state.training.wait()
    page.goto("/knowledge")
    assert page.locator("tr.version.active td").first.inner_text() == "v1 (active)"
    page.screenshot(path=tmp_path / "knowledge.png", full_page=True)


def test_compare_two_ticked_runs(page, world: World, tmp_path: Path) -> None:  # noqa: ANN001
    page.goto("/")
    for run in (world.run, world.second):
        page.locator(f'input[name=run][value="{run.id}"]').check()
    page.locator("#compare button").click()
    page.wait_for_url("**/compare?**")
    columns = dict(zip(page.locator("table.compare th.run-id").all_inner_texts(),
                       page.locator("td.lineage-size").all_inner_texts(), strict=True))
    assert columns == {world.run.id: "3 trials: 2 kept, 1 failed", world.second.id: "1 trials: 1 kept, 0 failed"}
    page.screenshot(path=tmp_path / "compare.png", full_page=True)


def test_other_users_runs_and_paths_out_of_the_workspace_are_not_found_from_the_browser(page, world: World) -> None:  # noqa: ANN001
    from web_world import secret_from_run

    probes = [f"/runs/{world.other.id}", f"/runs/{world.other.id}/paper", f"/runs/{world.run.id}/trials/{world.other_trial.id}",
              f"/runs/{world.run.id}/files/{secret_from_run(world).replace('/', '%2F')}"]
    for url in probes:
        answer = page.goto(url)
        assert answer.status == 404, url
        assert "secret" not in page.content() and "bob" not in page.content(), url


def test_the_html_export_opens_offline_with_its_figures(page, world: World, tmp_path: Path) -> None:  # noqa: ANN001
    from nanoresearch.web.export import write_export

    target = write_export(world.store, world.store.ensure_user("alice"), world.run, tmp_path / "run.html")
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "data:"))
               else route.continue_())  # anything fetched from elsewhere would fail
    page.goto(target.as_uri())
    assert page.evaluate("document.querySelector('.figures img').naturalWidth") == 10  # the inlined SVG drew
    page.locator(f'a.node[data-trial="{world.kept.id}"]').click()
    assert page.locator("section.trial:target pre.diff .add").inner_text() == "+lr = 0.05"
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=tmp_path / "export.png", full_page=True)
