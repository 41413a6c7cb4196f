"""The dashboard's routes: runs, a run (stages, ideas, blueprint, results, figures), its budget, paper and
trials, comparing runs, the user's knowledge, feedback and policy rollback, artifacts, and the live stream."""

from __future__ import annotations

import gc
import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from pydantic import ValidationError

from nanoresearch.config import Settings
from nanoresearch.errors import UserError
from nanoresearch.pipeline.feedback import record_feedback, train_in_background, trains_on
from nanoresearch.policy.adapters import parse_version
from nanoresearch.policy.adapters import rollback as rollback_policy
from nanoresearch.runs import shown_status
from nanoresearch.store import Store
from nanoresearch.store.models import Run, Trial
from nanoresearch.trials.lineage import head
from nanoresearch.web import compare, knowledge, lineage, live, paper, queries
from nanoresearch.web.artifacts import run_artifacts, stage_panels
from nanoresearch.web.budget import budget_view
from nanoresearch.web.security import CSRF_FIELD, Forbidden, TokenGate, artifact_path, checked_form
from nanoresearch.web.stores import ThreadStores

HERE = Path(__file__).parent
# Artifacts a browser may show inline; anything else is downloaded, never rendered as a page of ours.
INLINE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                ".svg": "image/svg+xml", ".pdf": "application/pdf"}
TEXT_SUFFIXES = {".txt", ".log", ".json", ".jsonl", ".tex", ".bib", ".md", ".csv", ".py", ".yaml", ".toml"}
# An SVG or any file opened directly could carry script: a sandbox policy keeps it from running as us.
ARTIFACT_POLICY = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
# Chrome's PDF viewer will not run in a sandboxed document; a PDF gets no script of ours and no network.
PDF_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


def templates() -> Jinja2Templates:
    # autoescape everywhere (not only for .html names): the SVG fragments carry run text too.
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    return Jinja2Templates(env=env)


def create_app(settings: Settings, token: str | None = None) -> FastAPI:
    stores = ThreadStores(settings.db_path)
    user_id = stores.get().ensure_user(settings.user)
    csrf = secrets.token_urlsafe(32)  # per server: forms carry it, other sites cannot read it
    app = FastAPI(title="NanoResearch", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TokenGate, token=token)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.router.on_shutdown.append(stores.close)
    app.state.stores = stores
    pages = templates()
    pages.env.globals.update(user=settings.user, csrf_field=CSRF_FIELD, csrf=csrf)

    def run_of(run_id: str) -> Run:
        return queries.owned_run(stores.get(), user_id, run_id)

    @app.exception_handler(queries.NotFound)
    async def not_found(request: Request, exc: queries.NotFound) -> Response:
        return PlainTextResponse("not found", status_code=404)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return PlainTextResponse(str(exc), status_code=403)

    @app.exception_handler(ValidationError)
    async def bad_query(request: Request, exc: ValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return PlainTextResponse(f"bad request: {problems}", status_code=400)

    @app.exception_handler(UserError)
    async def refused(request: Request, exc: UserError) -> Response:
        hint = f"\n{exc.hint}" if exc.hint else ""
        return PlainTextResponse(f"{exc.message}{hint}", status_code=400)

    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request) -> Response:
        view = queries.RunsView.model_validate(dict(request.query_params))
        rows = queries.run_rows(stores.get(), user_id)
        return pages.TemplateResponse(request, "runs.html", {"runs": queries.shown_rows(rows, view), "total": len(rows),
                                                             "view": view, "statuses": sorted({r.status for r in rows})})

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> Response:
        run = run_of(run_id)
        context = run_context(stores.get(), user_id, run, selected=None)
        return pages.TemplateResponse(request, "run.html", {**context, "versions": knowledge.policy_versions(settings)})

    @app.get("/runs/{run_id}/timeline", response_class=HTMLResponse)
    def timeline_fragment(request: Request, run_id: str) -> Response:
        run = run_of(run_id)
        return pages.TemplateResponse(request, "_timeline.html", live_context(stores.get(), user_id, run))

    @app.get("/runs/{run_id}/budget", response_class=HTMLResponse)
    def budget_page(request: Request, run_id: str) -> Response:
        run = run_of(run_id)
        return pages.TemplateResponse(request, "budget.html", {"run": run, "budget": budget_view(stores.get(), user_id, run)})

    @app.get("/runs/{run_id}/paper", response_class=HTMLResponse)
    def paper_page(request: Request, run_id: str) -> Response:
        run = run_of(run_id)
        has_pdf = artifact_path(run.workspace, paper.PAPER_PDF) is not None
        return pages.TemplateResponse(request, "paper.html", {"run": run, "paper": paper.paper_view(run, has_pdf),
                                                              "review": run_artifacts(run).review})

    @app.post("/runs/{run_id}/feedback")
    async def feedback(request: Request, run_id: str) -> Response:
        fields = await checked_form(request, csrf)
        run = run_of(run_id)
        stored = record_feedback(stores.get(), user_id, run, fields.get("stage", ""), fields.get("action", ""),
                                 fields.get("text", ""))
        if trains_on(settings, stored):
            # A round takes tens of seconds: the page does not wait; the round is kept to be waited on.
            app.state.training = train_in_background(settings)
        return RedirectResponse(f"/runs/{run.id}#stage-{stored.stage}", status_code=303)

    @app.get("/runs/{run_id}/trials/{trial_id}", response_class=HTMLResponse)
    def trial_page(request: Request, run_id: str, trial_id: int) -> Response:
        run = run_of(run_id)
        trial = queries.owned_trial(stores.get(), run, trial_id)
        return pages.TemplateResponse(request, "trial.html", run_context(stores.get(), user_id, run, selected=trial))

    @app.get("/runs/{run_id}/files/{relative:path}")
    def artifact(run_id: str, relative: str) -> Response:
        target = artifact_path(run_of(run_id).workspace, relative)
        if target is None:
            raise queries.NotFound(relative)
        return artifact_response(target)

    @app.get("/runs/{run_id}/events")
    async def events(request: Request, run_id: str) -> Response:
        run = run_of(run_id)
        stream = live.changes(lambda: queries.fingerprint(stores.get(), run), request.is_disconnected)
        return StreamingResponse(stream, media_type="text/event-stream", headers={"cache-control": "no-store"})

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(request: Request) -> Response:
        ids = compare.compared_ids(request.query_params.getlist("run"))
        columns = [compare.column(stores.get(), user_id, run_of(run_id)) for run_id in ids]
        return pages.TemplateResponse(request, "compare.html", {"columns": columns})

    @app.get("/knowledge", response_class=HTMLResponse)
    def knowledge_page(request: Request, q: str = "") -> Response:
        store = stores.get()
        return pages.TemplateResponse(request, "knowledge.html", {
            "skills": knowledge.skill_rows(settings, store, user_id), "query": q,
            "hits": knowledge.memory_hits(store, user_id, q), "versions": knowledge.policy_versions(settings)})

    @app.post("/policy/rollback")
    async def rollback(request: Request) -> Response:
        fields = await checked_form(request, csrf)
        rollback_policy(settings, parse_version(fields.get("version", "")))
        return RedirectResponse("/knowledge#policy", status_code=303)

    return app


def freeze_loaded_objects() -> None:
    """Call once the app is built, before serving: what is loaded by then (modules, templates, about 170k
    objects) lives as long as the server, and a full garbage collection walking it takes ~90 ms on a
    small machine, a spike in whichever page triggers it. Frozen, the collector skips it."""
    gc.collect()
    gc.freeze()


def artifact_response(target: Path) -> Response:
    suffix = target.suffix.lower()
    headers = {"content-security-policy": PDF_POLICY if suffix == ".pdf" else ARTIFACT_POLICY}
    if suffix in INLINE_TYPES:
        return FileResponse(target, media_type=INLINE_TYPES[suffix], headers=headers)
    if suffix in TEXT_SUFFIXES:
        return FileResponse(target, media_type="text/plain; charset=utf-8", headers=headers)
    return FileResponse(target, media_type="application/octet-stream", filename=target.name, headers=headers)


def live_context(store: Store, user_id: int, run: Run) -> dict:
    """What the live part of the run page shows (the fragment that SSE refreshes)."""
    fresh = store.get_run(run.id)
    return {"run": fresh, "status": shown_status(fresh),
            "stages": queries.timeline(store.steps(run.id)), "spent": store.spent(user_id, run.id),
            "log": queries.log_tail(fresh)}


def run_context(store: Store, user_id: int, run: Run, selected: Trial | None) -> dict:
    trials = store.trials(run.id)
    best = head(trials, queries.direction(run))
    return {**live_context(store, user_id, run), "tree": lineage.layout(trials, best.id if best else None),
            "selected": selected, "figures": queries.workspace_files(run, queries.FIGURE_SUFFIXES),
            "papers": queries.workspace_files(run, {".pdf"}), "diff_lines": diff_lines(selected.diff if selected else ""),
            "panels": stage_panels(store, user_id, run), "artifacts": run_artifacts(run)}


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """Each line of a unified diff with the class that colours it."""
    def kind(line: str) -> str:
        if line.startswith(("+++", "---")):
            return "meta"
        if line.startswith("@@"):
            return "hunk"
        return {"+": "add", "-": "del"}.get(line[:1], "ctx")
    return [(kind(line), line) for line in diff.splitlines()]
