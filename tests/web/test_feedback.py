"""Feedback from the page (the CLI's path: stored with the stage's plan, trains the planner), its CSRF
guard, and policy rollback; the last two tests train real adapters of the tiny planner."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_world import World

from nanoresearch.policy.adapters import active_version, policy_paths


@pytest.fixture
def client(dashboard: FastAPI) -> TestClient:
    return TestClient(dashboard, base_url="http://127.0.0.1")


def csrf_of(client: TestClient, url: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(url).text).group(1)


def post_feedback(client: TestClient, world: World, **fields: str) -> object:
    form = {"csrf": csrf_of(client, f"/runs/{world.run.id}"), "stage": "ideation", "action": "comment",
            "text": "look at more recent papers", **fields}
    return client.post(f"/runs/{world.run.id}/feedback", data=form, follow_redirects=False)


def test_a_comment_is_stored_with_the_stage_plan_and_shown_on_the_page(client: TestClient, world: World) -> None:
    answer = post_feedback(client, world)
    assert answer.status_code == 303 and answer.headers["location"] == f"/runs/{world.run.id}#stage-ideation"
    (stored,) = world.store.feedback(world.store.ensure_user("alice"), world.run.id)
    plan = next(p for p in world.store.stage_plans(stored.user_id, world.run.id) if p.stage == "ideation")
    assert (stored.stage, stored.action, stored.text, stored.plan_id) == ("ideation", "comment",
                                                                        "look at more recent papers", plan.id)
    assert '<p class="feedback comment">comment: look at more recent papers' in client.get(f"/runs/{world.run.id}").text


def test_an_approval_needs_no_text(client: TestClient, world: World) -> None:
    assert post_feedback(client, world, action="approve", text="").status_code == 303
    (stored,) = world.store.feedback(world.store.ensure_user("alice"), world.run.id)
    assert stored.action == "approve" and stored.text == ""


@pytest.mark.parametrize(("fields", "message"), [
    ({"action": "shout"}, "unknown action 'shout'"),
    ({"text": "  "}, "the feedback text is empty"),
    ({"stage": "writing"}, "has no writing stage yet"),
    ({"stage": "lunch"}, "unknown stage 'lunch'"),
])
def test_bad_feedback_is_refused_with_the_reason(client: TestClient, world: World, fields: dict, message: str) -> None:
    answer = post_feedback(client, world, **fields)
    assert answer.status_code == 400 and message in answer.text
    assert world.store.feedback(world.store.ensure_user("alice"), world.run.id) == []


@pytest.mark.parametrize("csrf", [None, "", "not-the-token"])
def test_feedback_without_the_pages_csrf_token_is_refused(client: TestClient, world: World, csrf: str | None) -> None:
    form = {"stage": "ideation", "action": "comment", "text": "x"} | ({} if csrf is None else {"csrf": csrf})
    answer = client.post(f"/runs/{world.run.id}/feedback", data=form, follow_redirects=False)
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert world.store.feedback(world.store.ensure_user("alice"), world.run.id) == []


def test_feedback_posted_from_another_site_is_refused_even_with_the_token(client: TestClient, world: World) -> None:
    form = {"csrf": csrf_of(client, f"/runs/{world.run.id}"), "stage": "ideation", "action": "comment", "text": "x"}
    answer = client.post(f"/runs/{world.run.id}/feedback", data=form, headers={"origin": "http://evil.example"},
                         follow_redirects=False)
    assert answer.status_code == 403 and "another site" in answer.text
    assert world.store.feedback(world.store.ensure_user("alice"), world.run.id) == []


def test_feedback_on_another_users_run_answers_404(client: TestClient, world: World) -> None:
    form = {"csrf": csrf_of(client, f"/runs/{world.run.id}"), "stage": "ideation", "action": "comment", "text": "x"}
    answer = client.post(f"/runs/{world.other.id}/feedback", data=form, follow_redirects=False)
    assert answer.status_code == 404 and "bob" not in answer.text
    assert world.store.feedback(world.store.ensure_user("bob"), world.other.id) == []


def test_rollback_needs_the_csrf_token(client: TestClient, world: World) -> None:
    answer = client.post("/policy/rollback", data={"version": "1"}, follow_redirects=False)
    assert answer.status_code == 403
    answer = client.post("/policy/rollback", data={"version": "v9", "csrf": csrf_of(client, f"/runs/{world.run.id}")})
    assert answer.status_code == 400 and "adapter v9 does not exist" in answer.text


def comment_and_train(client: TestClient, dashboard: FastAPI, world: World, text: str) -> None:
    form = {"csrf": csrf_of(client, f"/runs/{world.run.id}"), "stage": "planning", "action": "comment", "text": text}
    assert client.post(f"/runs/{world.run.id}/feedback", data=form, follow_redirects=False).status_code == 303
    dashboard.state.training.wait()  # the round the page started in the background


@pytest.mark.slow  # two SDPO rounds on the tiny planner
def test_comments_train_new_adapter_versions_listed_with_their_figures_and_rollback_works(
        client: TestClient, dashboard: FastAPI, trainable: World) -> None:
    comment_and_train(client, dashboard, trainable, "always include an ablation of each component")
    comment_and_train(client, dashboard, trainable, "keep the budget small")
    paths = policy_paths(trainable.settings)
    assert active_version(paths) == 2
    page = client.get("/knowledge").text
    v2 = page[page.index("<td>v2 (active)</td>"):]
    assert re.search(r"<td>kept</td><td>1 \+ \d replayed</td>\s*<td>[\d.]+ → [\d.]+</td>", v2[:v2.index("</tr>")])
    form = {"csrf": csrf_of(client, "/knowledge"), "version": "1"}
    answer = client.post("/policy/rollback", data=form, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/knowledge#policy"
    assert active_version(paths) == 1
    assert "<td>v1 (active)</td>" in client.get("/knowledge").text


def test_the_run_page_lists_the_planners_adapter_versions(client: TestClient, world: World) -> None:
    from web_world import write_version

    assert "no adapter yet: the planner is the base model" in client.get(f"/runs/{world.run.id}").text
    write_version(world.settings, 1, margin=(-0.075, -0.009), active=True)
    page = client.get(f"/runs/{world.run.id}").text
    assert "<td>v1 (active)</td>" in page and "-0.075 → -0.009" in page


def test_feedback_on_a_trial_session_is_refused(client: TestClient, world: World) -> None:
    from nanoresearch.runs import new_run
    from nanoresearch.store.models import RunOptions

    session = new_run(world.store, world.settings, world.store.ensure_user("alice"), "t", "tune", RunOptions(),
                      kind="trials")
    form = {"csrf": csrf_of(client, f"/runs/{world.run.id}"), "stage": "experiment", "action": "comment", "text": "x"}
    answer = client.post(f"/runs/{session.id}/feedback", data=form, follow_redirects=False)
    assert answer.status_code == 400 and f"feedback applies to research runs; {session.id} is a trial session" in answer.text
