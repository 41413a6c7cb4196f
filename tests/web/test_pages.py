"""The run page's panels (plans, recalled knowledge, ideas, blueprint, results, review), the budget charts,
the paper page, compare and the knowledge page, through FastAPI's TestClient on the tiny world."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from web_world import SCRIPT, World, write_json, write_version

from nanoresearch.knowledge import embeddings
from nanoresearch.knowledge.embeddings import HashedBagOfWords
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.skillbank import SkillBank
from nanoresearch.store.knowledge_models import MemoryRecord, Provenance, Skill
from nanoresearch.web.app import create_app


@pytest.fixture
def client(world: World) -> TestClient:
    return TestClient(create_app(world.settings), base_url="http://127.0.0.1")


def test_a_finished_stage_shows_its_plan_and_which_recalled_skills_it_used(client: TestClient, world: World) -> None:
    page = client.get(f"/runs/{world.run.id}").text
    panel = page[page.index('id="stage-ideation"'):page.index('id="stage-planning"')]
    assert "objective: find two papers on digits" in panel and "constraint: stay offline" in panel
    assert "budget share 50%" in panel
    assert '<tr class="skill used"><td>lr-sweep v2</td><td>0.610</td><td>bm25 0.50 embedding 0.70 </td><td>used</td>' in panel
    assert '<tr class="skill"><td>early-stop v1</td>' in panel and "not used" in panel
    assert "#7 small lr helps &lt;script&gt;" in panel and "<td>result</td>" in panel
    assert 'class="feedback-form"' in panel  # finished: it can be answered
    pending = page[page.index('id="stage-planning"'):page.index('id="stage-experiment"')]
    assert "pending" in pending and "feedback-form" not in pending


def test_ideas_with_novelty_components_blueprint_and_results_with_intervals(client: TestClient, world: World) -> None:
    page = client.get(f"/runs/{world.run.id}").text
    assert '<tr class="idea selected">' in page and '<td class="novelty">0.75</td>' in page
    assert "paper lecun98: Gradient-based learning" in page and "<td>0.25</td>" in page  # the closest work, its similarity
    assert "<td>yes</td>" in page  # the dead end is marked
    assert "<td>Learning rates for digits</td>" in page and "baseline (baseline, 3 seeds); proposed (proposed, 3 seeds)" in page
    assert '<td class="ci">[0.675, 0.725]</td>' in page and '<td class="ci">[0.45, 0.55]</td>' in page
    assert "overall 5/10" in page


def test_a_run_without_stage_files_still_renders(client: TestClient, world: World) -> None:
    write_json(world.run, "results.json", {"not": "results"})  # invalid: shown as absent, not a crash
    page = client.get(f"/runs/{world.second.id}")
    assert page.status_code == 200 and "<h2>Stages</h2>" not in page.text
    assert "<h2>Results</h2>" not in client.get(f"/runs/{world.run.id}").text


def bar_texts(page: str, section: str) -> list[str]:
    part = page[page.index(f'id="{section}"'):]
    part = part[:part.index("</section>")]
    return re.findall(r'class="amount">([^<]*)<', part)


def test_budget_charts_spent_against_the_limit_per_unit_stage_and_trial(client: TestClient, world: World) -> None:
    page = client.get(f"/runs/{world.run.id}/budget").text
    assert page.count("<svg") == 3  # drawn on the server: no chart script
    totals = bar_texts(page, "budget-total")
    assert "1,234 / 2,000 tokens" in totals and "$0.2500 / $1.0000 USD" in totals and "0 / 5 trials" in totals
    assert 'width="185"' in page  # 1234 of 2000 tokens is 185 of 300 pixels
    assert "experiment · tokens" in page and "1,234 / 2,000 tokens" in bar_texts(page, "budget-stages")
    assert f"trial {world.kept.id} · trial s" in page and "30 trial s (no limit)" in bar_texts(page, "budget-trials")


def test_a_unit_spent_past_its_limit_is_marked(client: TestClient, world: World) -> None:
    world.store.charge(world.store.ensure_user("alice"), world.run.id, "usd", 2.0, "test")
    page = client.get(f"/runs/{world.run.id}/budget").text
    assert '<g class="bar over"><text x="0" y="125" class="label">USD</text>' in page
    assert "$2.2500 / $1.0000 USD" in page


def test_the_paper_page_links_each_number_to_its_place_in_results_json(client: TestClient, world: World) -> None:
    page = client.get(f"/runs/{world.run.id}/paper").text
    assert f'<iframe class="pdf" src="/runs/{world.run.id}/files/paper/paper.pdf"' in page
    assert '<a class="number" href="#n-ResProposedMean">\\ResProposedMean</a>' in page
    assert '<tr id="n-ResProposedMean">' in page and '<a class="source" href="#r/conditions/1/mean">' in page
    assert '<span id="r/conditions/1/mean" class="d3">      &#34;mean&#34;: 0.7</span>' in page
    assert '<span id="r/conditions/1/ci95/0" class="d4">        0.675</span>' in page
    assert "overall 5/10" in page and "<script>" not in page
    pdf = client.get(f"/runs/{world.run.id}/files/paper/paper.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and "script-src" not in pdf.headers["content-security-policy"]


def test_compare_shows_two_runs_side_by_side(client: TestClient, world: World) -> None:
    page = client.get(f"/compare?run={world.run.id}&run={world.second.id}").text
    assert page.count('<th class="run-id">') == 2
    assert "baseline: 0.5 [0.45, 0.55] (n=3)" in page and "no results" in page
    assert "tokens 2000<br>trials 5<br>usd 1.0" in page and "trials 4<br>" in page
    assert "3 trials: 2 kept, 1 failed" in page and "1 trials: 1 kept, 0 failed" in page
    assert "overall 5/10, soundness 3/4" in page and "1234 tokens, $0.2500" in page


@pytest.mark.parametrize("query", ["run={run}", "run={run}&run={run}", "", "run={run}&run=a&run=b&run=c&run=d"])
def test_compare_needs_two_to_four_different_runs(client: TestClient, world: World, query: str) -> None:
    answer = client.get("/compare?" + query.format(run=world.run.id))
    assert answer.status_code == 400 and "compare needs 2 to 4 different runs" in answer.text


def test_compare_with_another_users_run_answers_404(client: TestClient, world: World) -> None:
    answer = client.get(f"/compare?run={world.run.id}&run={world.other.id}")
    assert answer.status_code == 404 and "bob" not in answer.text


@pytest.fixture
def knowledge(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """alice's skill learned in her run, a shared one learned in bob's, and a memory record."""
    monkeypatch.setattr(embeddings, "default_embedder", HashedBagOfWords)
    bank = SkillBank(world.settings, world.store)
    skill = bank.add_skill(Skill(name="lr-sweep", description=f"sweep the lr {SCRIPT}", body="try three values",
                                 provenance=[Provenance(run_id=world.run.id, trial_ids=[world.kept.id])]))
    bank.record_use(skill, succeeded=True)
    bank.record_use(skill, succeeded=False)
    bank.record_use(skill, succeeded=True)
    bank.add_skill(Skill(name="bobs-trick", description="from elsewhere", body="x", visibility="shared",
                         provenance=[Provenance(run_id=world.other.id, trial_ids=[world.other_trial.id])]))
    Memory(world.store, world.store.ensure_user("alice")).remember(
        MemoryRecord(type="result", text="a smaller learning rate helps on digits"))


def test_knowledge_lists_skills_with_provenance_uses_and_success_rate(client: TestClient, world: World, knowledge) -> None:  # noqa: ANN001
    page = client.get("/knowledge").text
    row = page[page.index("<b>lr-sweep</b>"):]
    row = row[:row.index("</tr>")]
    assert "<td>3</td><td>67%</td>" in row
    assert f'<a href="/runs/{world.run.id}">{world.run.id}</a> <a href="/runs/{world.run.id}/trials/{world.kept.id}">' in row
    assert html.escape(SCRIPT, quote=False) in page and SCRIPT not in page
    shared = page[page.index("<b>bobs-trick</b>"):]
    shared = shared[:shared.index("</tr>")]
    assert world.other.id not in shared and "1 run(s) of other users" in shared


def test_memory_search_shows_each_hits_score_components(client: TestClient, knowledge) -> None:  # noqa: ANN001
    page = client.get("/knowledge", params={"q": "learning rate digits"}).text
    hit = page[page.index('<tr class="hit">'):]
    hit = hit[:hit.index("</tr>")]
    assert "a smaller learning rate helps on digits" in hit
    assert re.search(r"bm25 \d\.\d\d embedding \d\.\d\d importance \d\.\d\d recency \d\.\d\d", hit), hit


def test_policy_versions_show_gap_margins_and_drift(client: TestClient, world: World) -> None:
    write_version(world.settings, 1, margin=(-0.075, -0.009), active=False)
    write_version(world.settings, 2, margin=(-0.009, 0.02), active=True)
    page = client.get("/knowledge").text
    assert page.index("<td>v2 (active)</td>") < page.index("<td>v1</td>")  # newest first
    v1 = page[page.index("<td>v1</td>"):]
    v1 = v1[:v1.index("</tr>")]
    assert "-0.075 → -0.009" in v1 and "0.386 → 0.076" in v1 and "<td>0.060</td><td>1.02</td>" in v1
    assert 'action="/policy/rollback"' in v1 and 'name="version" value="1"' in v1
