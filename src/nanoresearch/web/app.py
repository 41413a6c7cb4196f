"""The dashboard's routes: runs list, run page, trial page, artifacts, and the live-update stream."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from nanoresearch.store import Store
from nanoresearch.store.models import Run, Trial
from nanoresearch.trials.lineage import head
from nanoresearch.web import lineage, live, queries
from nanoresearch.web.security import TokenGate, artifact_path

HERE = Path(__file__).parent
# Artifacts a browser may show inline; anything else is downloaded, never rendered as a page of ours.
INLINE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                ".svg": "image/svg+xml", ".pdf": "application/pdf"}
TEXT_SUFFIXES = {".txt", ".log", ".json", ".jsonl", ".tex", ".bib", ".md", ".csv", ".py", ".yaml", ".toml"}
# An SVG or any file opened directly could carry script: a sandbox policy keeps it from running as us.
ARTIFACT_POLICY = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


def templates() -> Jinja2Templates:
    # autoescape everywhere (not only for .html names): the SVG fragments carry run text too.
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    return Jinja2Templates(env=env)


def create_app(store: Store, user: str, token: str | None = None) -> FastAPI:
    user_id = store.ensure_user(user)
    app = FastAPI(title="NanoResearch", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TokenGate, token=token)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    pages = templates()
    pages.env.globals["user"] = user  # the header names whose runs these are

    def run_of(run_id: str) -> Run:
        return queries.owned_run(store, user_id, run_id)

    @app.exception_handler(queries.NotFound)
    async def not_found(request: Request, exc: queries.NotFound) -> Response:
        return PlainTextResponse("not found", status_code=404)

    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request) -> Response:
        return pages.TemplateResponse(request, "runs.html", {"runs": queries.run_rows(store, user_id)})

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> Response:
        run = run_of(run_id)
        return pages.TemplateResponse(request, "run.html", run_context(store, user_id, run, selected=None))

    @app.get("/runs/{run_id}/timeline", response_class=HTMLResponse)
    def timeline_fragment(request: Request, run_id: str) -> Response:
        run = run_of(run_id)
        return pages.TemplateResponse(request, "_timeline.html", live_context(store, user_id, run))

    @app.get("/runs/{run_id}/trials/{trial_id}", response_class=HTMLResponse)
    def trial_page(request: Request, run_id: str, trial_id: int) -> Response:
        run = run_of(run_id)
        trial = queries.owned_trial(store, run, trial_id)
        return pages.TemplateResponse(request, "trial.html", run_context(store, user_id, run, selected=trial))

    @app.get("/runs/{run_id}/files/{relative:path}")
    def artifact(run_id: str, relative: str) -> Response:
        target = artifact_path(run_of(run_id).workspace, relative)
        if target is None:
            raise queries.NotFound(relative)
        return artifact_response(target)

    @app.get("/runs/{run_id}/events")
    async def events(request: Request, run_id: str) -> Response:
        run = run_of(run_id)
        stream = live.changes(store, run, request.is_disconnected)
        return StreamingResponse(stream, media_type="text/event-stream", headers={"cache-control": "no-store"})

    return app


def artifact_response(target: Path) -> Response:
    suffix = target.suffix.lower()
    headers = {"content-security-policy": ARTIFACT_POLICY}
    if suffix in INLINE_TYPES:
        return FileResponse(target, media_type=INLINE_TYPES[suffix], headers=headers)
    if suffix in TEXT_SUFFIXES:
        return FileResponse(target, media_type="text/plain; charset=utf-8", headers=headers)
    return FileResponse(target, media_type="application/octet-stream", filename=target.name, headers=headers)


def live_context(store: Store, user_id: int, run: Run) -> dict:
    """What the live part of the run page shows (the fragment that SSE refreshes)."""
    fresh = store.get_run(run.id)
    return {"run": fresh, "status": queries.run_row(store, user_id, fresh).status,
            "stages": queries.timeline(store.steps(run.id)), "spent": store.spent(user_id, run.id),
            "log": queries.log_tail(fresh)}


def run_context(store: Store, user_id: int, run: Run, selected: Trial | None) -> dict:
    trials = store.trials(run.id)
    best = head(trials, queries.direction(run))
    return {**live_context(store, user_id, run), "tree": lineage.layout(trials, best.id if best else None),
            "selected": selected, "figures": queries.workspace_files(run, queries.FIGURE_SUFFIXES),
            "papers": queries.workspace_files(run, {".pdf"}), "diff_lines": diff_lines(selected.diff if selected else "")}


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """Each line of a unified diff with the class that colours it."""
    def kind(line: str) -> str:
        if line.startswith(("+++", "---")):
            return "meta"
        if line.startswith("@@"):
            return "hunk"
        return {"+": "add", "-": "del"}.get(line[:1], "ctx")
    return [(kind(line), line) for line in diff.splitlines()]
