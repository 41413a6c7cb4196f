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
    row = page.locator("#runs tr.run")
    assert row.count() == 1
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
