"""The one module that speaks SQL. SQLite in WAL mode with foreign keys on.

Writes go through `transaction()`, which takes the write lock up front (`BEGIN IMMEDIATE`) so two
processes never interleave half-done changes; readers are never blocked in WAL mode. A busy
timeout makes a second writer wait instead of failing. Schema changes are numbered `.sql` files
under `migrations/`, applied in order and tracked by `PRAGMA user_version`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random

from nanoresearch.errors import StoreError
from nanoresearch.store.knowledge_models import IndexEntry, KnowledgeKind, MemoryRecord, Skill, SkillFileState
from nanoresearch.store.models import (
    Charge,
    Feedback,
    FeedbackAction,
    LedgerKind,
    LLMCall,
    Run,
    RunKind,
    RunOptions,
    RunStatus,
    RunSummary,
    StagePlanRecord,
    Step,
    StepStatus,
    StopReason,
    Trial,
)

BUSY_TIMEOUT_MS = 30_000
OPEN_ATTEMPTS = 5


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def migrations() -> list[tuple[int, str]]:
    """(number, sql) for every migration file, in order."""
    folder = resources.files("nanoresearch.store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def split_statements(sql: str) -> list[str]:
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        raise StoreError(f"incomplete SQL statement in migration: {current.strip()[:80]}")
    return statements


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.home = self.path.absolute().parent  # paths inside it are stored relative to it (migration 0010)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Two processes opening a new database at once can see SQLITE_BUSY without the busy handler
            # (SQLite refuses a lock upgrade that could deadlock, e.g. while the other turns on WAL):
            # opening is idempotent, so it is tried again.
            for attempt in Retrying(retry=retry_if_exception(_locked), stop=stop_after_attempt(OPEN_ATTEMPTS),
                                    wait=wait_random(0.05, 0.5), reraise=True):
                with attempt:
                    self._conn = self._open()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the database {self.path}: {exc}",
                hint="check that the folder is writable, or set NANORESEARCH_HOME to another folder",
            ) from None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn = conn
            self.migrate()
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> int:
        """Apply pending migrations; safe when several processes open a new database at once.

        A current schema is seen without taking the write lock: opening the store (as each dashboard
        thread does) never waits for another process's long write."""
        known = migrations()
        if known and self.schema_version() >= known[-1][0]:
            return self.schema_version()
        with self.transaction() as conn:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, sql in known:
                if number <= current:
                    continue
                for statement in split_statements(sql):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                current = number
        return current

    def integrity_ok(self) -> bool:
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # users and projects

    def ensure_user(self, name: str) -> int:
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO users (name, created_at) VALUES (?, ?)", (name, now()))
            return conn.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()[0]

    def ensure_project(self, user_id: int, name: str, goal: str = "") -> int:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO projects (user_id, name, goal, created_at) VALUES (?, ?, ?, ?)",
                (user_id, name, goal, now()),
            )
            row = conn.execute("SELECT id FROM projects WHERE user_id = ? AND name = ?", (user_id, name))
            return row.fetchone()[0]

    # runs and checkpoints

    def create_run(self, run_id: str, project_id: int, goal: str, workspace: str, options: RunOptions | None = None,
                   *, kind: RunKind = "research") -> Run:
        stamp = now()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, project_id, kind, goal, status, workspace, options_json, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'created', ?, ?, ?, ?)",
                (run_id, project_id, kind, goal, self.portable(workspace), self._stored(options or RunOptions()),
                 stamp, stamp),
            )
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r}", hint="`nanoresearch list` shows your runs")
        return self._run(row)

    def list_runs(self, user_id: int) -> list[Run]:
        rows = self._conn.execute(
            "SELECT runs.* FROM runs JOIN projects ON projects.id = runs.project_id"
            " WHERE projects.user_id = ? ORDER BY runs.created_at",
            (user_id,),
        )
        return [self._run(row) for row in rows]

    def run_summaries(self, user_id: int) -> dict[str, RunSummary]:
        """Per run of the user: latest stage, kept-score extremes, baseline score, tokens and dollars.
        One query, so that listing a thousand runs does not read every trial of each."""
        rows = self._conn.execute(
            "SELECT runs.id,"
            " (SELECT stage FROM steps WHERE steps.run_id = runs.id ORDER BY steps.id DESC LIMIT 1),"
            " (SELECT MAX(score) FROM trials WHERE trials.run_id = runs.id AND kept AND score IS NOT NULL),"
            " (SELECT MIN(score) FROM trials WHERE trials.run_id = runs.id AND kept AND score IS NOT NULL),"
            " (SELECT score FROM trials WHERE trials.run_id = runs.id AND proposer = 'baseline' AND status = 'done'"
            "  ORDER BY trials.id LIMIT 1),"
            " (SELECT SUM(amount) FROM ledger WHERE ledger.run_id = runs.id AND ledger.user_id = ? AND kind = 'tokens'),"
            " (SELECT SUM(amount) FROM ledger WHERE ledger.run_id = runs.id AND ledger.user_id = ? AND kind = 'usd')"
            " FROM runs JOIN projects ON projects.id = runs.project_id WHERE projects.user_id = ?",
            (user_id, user_id, user_id),
        )
        return {r[0]: RunSummary(run_id=r[0], stage=r[1] or "", best_max=r[2], best_min=r[3], baseline=r[4],
                                 tokens=r[5] or 0.0, usd=r[6] or 0.0) for r in rows}

    def set_run_status(self, run_id: str, status: RunStatus) -> None:
        """A new status ends any stop: a stopped run that is resumed runs again."""
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET status = ?, stop_reason = NULL, updated_at = ? WHERE id = ?",
                         (status, now(), run_id))

    def stop_run(self, run_id: str, reason: StopReason) -> None:
        """The run stopped before its end for `reason`; it is paused, so that resume can continue it."""
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET status = 'paused', stop_reason = ?, updated_at = ? WHERE id = ?",
                         (reason, now(), run_id))

    def active_seconds(self, run_id: str) -> float:
        """How long the run has been running, paused time excluded (kept by migration 0008's trigger)."""
        row = self._conn.execute(
            "SELECT active_s + CASE WHEN status = 'running' AND running_since IS NOT NULL"
            " THEN max(0, (julianday('now') - 2440587.5) * 86400.0 - running_since) ELSE 0 END FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        return row[0] if row else 0.0

    def set_run_options(self, run_id: str, options: RunOptions) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET options_json = ?, updated_at = ? WHERE id = ?",
                         (self._stored(options), now(), run_id))

    def archive_run(self, run_id: str, archived: bool = True) -> None:
        """Hide the run from the runs list (or show it again); nothing of it is deleted."""
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET archived_at = ? WHERE id = ?", (now() if archived else None, run_id))

    def delete_run(self, run_id: str) -> None:
        """Delete the run's rows: its steps, trials, stage plans, feedback and ledger go with it (ON DELETE
        CASCADE), and its recorded model calls are deleted too rather than kept without a run."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM llm_calls WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # Paths inside the home (a run's workspace, a trial's working copy, a generated task) are stored
    # relative to it, so that a copied or moved home still finds them; the store reads them back absolute.

    def portable(self, path: str) -> str:
        """The path as stored: relative to the home when it is inside it, unchanged otherwise."""
        if not path:
            return path
        try:
            return Path(path).absolute().relative_to(self.home).as_posix()
        except ValueError:
            return path

    def resolved(self, path: str) -> str:
        """A stored path made absolute again: a relative one is inside the home."""
        return path if not path or Path(path).is_absolute() else str(self.home / path)

    def _stored(self, options: RunOptions) -> str:
        return options.model_copy(update={"task": options.task and self.portable(options.task)}).model_dump_json()

    def _run(self, row: sqlite3.Row) -> Run:
        options = RunOptions.model_validate_json(row["options_json"])
        return Run(
            id=row["id"], project_id=row["project_id"], kind=row["kind"], goal=row["goal"], status=row["status"],
            workspace=self.resolved(row["workspace"]),
            options=options.model_copy(update={"task": options.task and self.resolved(options.task)}),
            stop_reason=row["stop_reason"], archived_at=row["archived_at"],
            created_at=row["created_at"], updated_at=row["updated_at"],
        )

    def save_step(self, run_id: str, stage: str, step: str, status: StepStatus, payload: dict | None = None) -> None:
        stamp = now()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO steps (run_id, stage, step, status, payload_json, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, stage, step) DO UPDATE SET"
                " status = excluded.status, payload_json = excluded.payload_json, updated_at = excluded.updated_at",
                (run_id, stage, step, status, json.dumps(payload or {}), stamp, stamp),
            )

    def clear_steps(self, run_id: str, stage: str) -> None:
        """Forget a stage's checkpoints so that it runs again (a redirect)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM steps WHERE run_id = ? AND stage = ?", (run_id, stage))

    def steps(self, run_id: str) -> list[Step]:
        rows = self._conn.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY id", (run_id,))
        return [
            Step(run_id=r["run_id"], stage=r["stage"], step=r["step"], status=r["status"],
                 payload=json.loads(r["payload_json"]), updated_at=r["updated_at"])
            for r in rows
        ]

    # LLM calls (recording and replay)

    def record_llm_call(self, call: LLMCall) -> int:
        """Store a call and charge its tokens and dollars to the ledger, all or nothing."""
        with self.transaction() as conn:
            call_id = _inserted_id(conn.execute(
                "INSERT INTO llm_calls (key, user_id, run_id, stage, provider, model, request_json,"
                " response_text, finish_reason, failure, prompt_tokens, completion_tokens, cost_usd, latency_s,"
                " prompt_ids_json, output_ids_json, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (call.key, call.user_id, call.run_id, call.stage, call.provider, call.model,
                 json.dumps(call.request, sort_keys=True), call.response_text, call.finish_reason, call.failure,
                 call.prompt_tokens, call.completion_tokens, call.cost_usd, call.latency_s,
                 _json_or_null(call.prompt_ids), _json_or_null(call.output_ids), now()),
            ))
            charges: list[tuple[str, float]] = [("tokens", call.prompt_tokens + call.completion_tokens)]
            if call.cost_usd:
                charges.append(("usd", call.cost_usd))
            for kind, amount in charges:
                self._insert_charge(conn, call.user_id, call.run_id, kind, amount, f"llm_call:{call_id}")
            return call_id

    def find_llm_call(
        self, user_id: int, key: str, run_id: str | None = None, *, include_failed: bool = False
    ) -> LLMCall | None:
        """The latest recording of this exact call by this user (never another user's), in one run if given.

        A reply that failed validation is no answer: it is skipped, unless `include_failed` asks for
        it (offline replay of a whole recording follows its repair rounds); a usable one comes first.
        """
        sql, args = "SELECT * FROM llm_calls WHERE user_id = ? AND key = ?", [user_id, key]
        if run_id is not None:
            sql, args = sql + " AND run_id = ?", [*args, run_id]
        if not include_failed:
            sql += " AND failure IS NULL"
        row = self._conn.execute(sql + " ORDER BY failure IS NOT NULL, id DESC LIMIT 1", args).fetchone()
        return None if row is None else _llm_call(row)

    def llm_calls(self, user_id: int, run_id: str | None = None) -> list[LLMCall]:
        if run_id is None:
            rows = self._conn.execute("SELECT * FROM llm_calls WHERE user_id = ? ORDER BY id", (user_id,))
        else:
            rows = self._conn.execute(
                "SELECT * FROM llm_calls WHERE user_id = ? AND run_id = ? ORDER BY id", (user_id, run_id)
            )
        return [_llm_call(row) for row in rows]

    # trials

    def add_trial(self, trial: Trial) -> Trial:
        with self.transaction() as conn:
            placeholders = ", ".join("?" for _ in _TRIAL_COLUMNS)
            trial_id = _inserted_id(conn.execute(
                f"INSERT INTO trials ({', '.join(_TRIAL_COLUMNS)}, created_at) VALUES ({placeholders}, ?)",
                (*_trial_values(self._portable_trial(trial)), now()),
            ))
        return self.trial(trial_id)

    def update_trial(self, trial: Trial) -> None:
        assignments = ", ".join(f"{column} = ?" for column in _TRIAL_COLUMNS)
        with self.transaction() as conn:
            conn.execute(f"UPDATE trials SET {assignments} WHERE id = ?", (*_trial_values(self._portable_trial(trial)), trial.id))

    def trial(self, trial_id: int) -> Trial:
        row = self._conn.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            raise StoreError(f"no trial {trial_id}", hint="`nanoresearch trials list` shows the trials")
        return self._resolved_trial(_trial(row))

    def trials(self, run_id: str) -> list[Trial]:
        rows = self._conn.execute("SELECT * FROM trials WHERE run_id = ? ORDER BY id", (run_id,))
        return [self._resolved_trial(_trial(r)) for r in rows]

    def _portable_trial(self, trial: Trial) -> Trial:
        return trial.model_copy(update={"workdir": self.portable(trial.workdir)})

    def _resolved_trial(self, trial: Trial) -> Trial:
        return trial.model_copy(update={"workdir": self.resolved(trial.workdir)})

    # feedback and budget ledger

    # stage plans and feedback

    def save_stage_plan(self, plan: StagePlanRecord) -> int:
        """The planner's call for a stage; a stage re-planned after a redirect replaces its row."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM stage_plans WHERE run_id = ? AND stage = ?", (plan.run_id, plan.stage))
            return _inserted_id(conn.execute(
                "INSERT INTO stage_plans (user_id, run_id, stage, provider, model, prompt_json, prompt_ids_json,"
                " output_text, output_ids_json, plan_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (plan.user_id, plan.run_id, plan.stage, plan.provider, plan.model, json.dumps(plan.prompt),
                 _json_or_null(plan.prompt_ids), plan.output_text, _json_or_null(plan.output_ids),
                 json.dumps(plan.plan), now()),
            ))

    def stage_plans(self, user_id: int, run_id: str | None = None) -> list[StagePlanRecord]:
        args: list[object]  # SQL parameters of mixed types
        sql, args = "SELECT * FROM stage_plans WHERE user_id = ?", [user_id]
        if run_id is not None:
            sql, args = sql + " AND run_id = ?", [*args, run_id]
        return [_stage_plan(r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    def add_feedback(
        self, user_id: int, run_id: str, stage: str, action: FeedbackAction, text: str = "", plan_id: int | None = None
    ) -> int:
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO feedback (user_id, run_id, stage, action, text, plan_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, run_id, stage, action, text, plan_id, now()),
            )
            return _inserted_id(cursor)

    def feedback(self, user_id: int, run_id: str | None = None) -> list[Feedback]:
        args: list[object]  # SQL parameters of mixed types
        sql, args = "SELECT * FROM feedback WHERE user_id = ?", [user_id]
        if run_id is not None:
            sql, args = sql + " AND run_id = ?", [*args, run_id]
        fields = ("id", "user_id", "run_id", "stage", "action", "text", "plan_id", "created_at")
        return [Feedback(**{k: r[k] for k in fields}) for r in self._conn.execute(sql + " ORDER BY id", args)]

    def charge(self, user_id: int, run_id: str | None, kind: LedgerKind, amount: float, source: str) -> None:
        with self.transaction() as conn:
            self._insert_charge(conn, user_id, run_id, kind, amount, source)

    @staticmethod
    def _insert_charge(conn: sqlite3.Connection, user_id: int, run_id: str | None, kind: str, amount: float, source: str) -> None:
        conn.execute(
            "INSERT INTO ledger (user_id, run_id, kind, amount, source, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, run_id, kind, amount, source, now()),
        )

    def spent(self, user_id: int, run_id: str | None = None) -> dict[str, float]:
        """Totals per ledger kind for one run, or for all of a user's spending."""
        if run_id is None:
            rows = self._conn.execute("SELECT kind, SUM(amount) FROM ledger WHERE user_id = ? GROUP BY kind", (user_id,))
        else:
            rows = self._conn.execute(
                "SELECT kind, SUM(amount) FROM ledger WHERE user_id = ? AND run_id = ? GROUP BY kind", (user_id, run_id)
            )
        return {kind: total for kind, total in rows}

    def charges(self, user_id: int, run_id: str) -> list[Charge]:
        """Every charge to one run, oldest first: the dashboard splits them per stage and per trial."""
        rows = self._conn.execute(
            "SELECT kind, amount, source, created_at FROM ledger WHERE user_id = ? AND run_id = ? ORDER BY id",
            (user_id, run_id),
        )
        return [Charge(kind=r["kind"], amount=r["amount"], source=r["source"], created_at=r["created_at"]) for r in rows]

    # --- knowledge --- skill index and memory records (knowledge/skillbank.py, memory.py, retrieval.py).
    # Scope is applied here, in SQL: a user's own rows plus rows shared on purpose, never another's.

    def knowledge_version(self, kind: KnowledgeKind) -> int:
        """Bumped by every write that changes what retrieval sees; in-memory indexes reload on a change."""
        return self._conn.execute("SELECT version FROM knowledge_versions WHERE kind = ?", (kind,)).fetchone()[0]

    @staticmethod
    def _bump(conn: sqlite3.Connection, kind: KnowledgeKind) -> None:
        conn.execute("UPDATE knowledge_versions SET version = version + 1 WHERE kind = ?", (kind,))

    def index_entries(self, kind: KnowledgeKind, user_id: int) -> list[IndexEntry]:
        """Everything of one kind that this user may see: their own rows and shared ones."""
        if kind == "skill":
            rows = self._conn.execute(
                "SELECT id, document, tags_json, stages_json, updated_at, embedder, vector, uses, successes"
                " FROM skills WHERE user_id = ? OR user_id IS NULL ORDER BY id", (user_id,))
            return [IndexEntry(id=r[0], document=r[1], tags=json.loads(r[2]), stages=json.loads(r[3]), updated=r[4],
                               embedder=r[5], vector=r[6], uses=r[7], successes=r[8]) for r in rows]
        rows = self._conn.execute(
            "SELECT id, document, tags_json, stages_json, updated_at, embedder, vector, importance, confidence,"
            " reinforced_at, project_id, type FROM memories WHERE user_id = ? OR visibility = 'shared' ORDER BY id",
            (user_id,))
        return [IndexEntry(id=r[0], document=r[1], tags=json.loads(r[2]), stages=json.loads(r[3]), updated=r[4],
                           embedder=r[5], vector=r[6], importance=r[7], confidence=r[8], reinforced=r[9],
                           project_id=r[10], type=r[11]) for r in rows]

    def save_vectors(self, kind: KnowledgeKind, rows: list[tuple[int, str, bytes]]) -> None:
        """(id, embedder, float32 bytes): derived data, so no version bump."""
        table = "skills" if kind == "skill" else "memories"
        with self.transaction() as conn:
            conn.executemany(f"UPDATE {table} SET embedder = ?, vector = ? WHERE id = ?",
                             [(embedder, blob, item_id) for item_id, embedder, blob in rows])

    def skill_files(self, owner_id: int | None) -> dict[str, SkillFileState]:
        """The indexed skills of one folder (a user's private skills, or the shared ones), by name."""
        rows = self._conn.execute(
            "SELECT name, id, path, file_sha256, file_mtime_ns, file_size FROM skills WHERE ifnull(user_id, 0) = ?",
            (owner_id or 0,))
        return {r[0]: SkillFileState(id=r[1], path=r[2], sha256=r[3], mtime_ns=r[4], size=r[5]) for r in rows}

    def put_skill(self, owner_id: int | None, skill: Skill, state: SkillFileState, document: str) -> int:
        """Index a skill read from (or just written to) its SKILL.md; a changed text drops its old vector."""
        data = skill.model_dump(mode="json", exclude={"owner", "path", "id"})
        values = (state.path, state.sha256, state.mtime_ns, state.size, json.dumps(data), document,
                  json.dumps(skill.tags), json.dumps(skill.stages), skill.uses, skill.successes, data["updated"])
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO skills (user_id, name, path, file_sha256, file_mtime_ns, file_size, skill_json, document,"
                " tags_json, stages_json, uses, successes, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (ifnull(user_id, 0), name) DO UPDATE SET path = excluded.path,"
                " file_sha256 = excluded.file_sha256, file_mtime_ns = excluded.file_mtime_ns,"
                " file_size = excluded.file_size, skill_json = excluded.skill_json, tags_json = excluded.tags_json,"
                " stages_json = excluded.stages_json, uses = excluded.uses, successes = excluded.successes,"
                " updated_at = excluded.updated_at,"
                " vector = CASE WHEN document = excluded.document THEN vector END,"
                " embedder = CASE WHEN document = excluded.document THEN embedder END,"
                " document = excluded.document",
                (owner_id, skill.name, *values),
            )
            self._bump(conn, "skill")
            return conn.execute("SELECT id FROM skills WHERE ifnull(user_id, 0) = ? AND name = ?",
                                (owner_id or 0, skill.name)).fetchone()[0]

    def touch_skill_file(self, skill_id: int, state: SkillFileState) -> None:
        """The file was rewritten with the same content (or only its mtime changed): remember the new stat."""
        with self.transaction() as conn:
            conn.execute("UPDATE skills SET file_mtime_ns = ?, file_size = ? WHERE id = ?",
                         (state.mtime_ns, state.size, skill_id))

    def delete_skill(self, skill_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM skills WHERE id = ?", (skill_id,))
            self._bump(conn, "skill")

    def visible_skills(self, user_id: int, ids: list[int] | None = None) -> list[Skill]:
        """The user's own skills, then the shared ones, by name; only the given ids when asked."""
        sql = ("SELECT skills.skill_json, skills.path, users.name, skills.id FROM skills"
               " LEFT JOIN users ON users.id = skills.user_id WHERE (skills.user_id = ? OR skills.user_id IS NULL)")
        args: list[object] = [user_id]
        if ids is not None:
            sql += f" AND skills.id IN ({', '.join('?' for _ in ids)})"
            args += ids
        rows = self._conn.execute(sql + " ORDER BY skills.user_id IS NULL, skills.name", args).fetchall()
        return [Skill(**json.loads(r[0]), path=Path(r[1]), owner=r[2], id=r[3]) for r in rows]

    def skill_ids(self, user_id: int) -> dict[int, tuple[int | None, str]]:
        """id -> (owner id, name) of every skill the user may see."""
        rows = self._conn.execute("SELECT id, user_id, name FROM skills WHERE user_id = ? OR user_id IS NULL", (user_id,))
        return {r[0]: (r[1], r[2]) for r in rows}

    def add_memory(self, record: MemoryRecord, document: str) -> int:
        with self.transaction() as conn:
            memory_id = _inserted_id(conn.execute(
                "INSERT INTO memories (user_id, project_id, visibility, type, text, conditions_json, evidence_json,"
                " tags_json, stages_json, importance, confidence, support, contradictions, document, created_at,"
                " updated_at, reinforced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.user_id, record.project_id, record.visibility, record.type, record.text,
                 record.conditions.model_dump_json(), json.dumps([e.model_dump() for e in record.evidence]),
                 json.dumps(record.tags), json.dumps(record.stages), record.importance, record.confidence,
                 record.support, record.contradictions, document, record.created.isoformat(),
                 record.updated.isoformat(), record.reinforced.isoformat()),
            ))
            self._bump(conn, "memory")
            return memory_id

    def memory_twin(self, record: MemoryRecord) -> int | None:
        """The id of the owner's record with the same type, text, project and visibility, if any."""
        row = self._conn.execute(
            "SELECT id FROM memories WHERE user_id = ? AND type = ? AND text = ? AND project_id IS ? AND visibility = ?",
            (record.user_id, record.type, record.text, record.project_id, record.visibility)).fetchone()
        return None if row is None else row[0]

    def visible_memories(
        self, user_id: int, ids: list[int] | None = None, project_id: int | None = None, types: list[str] | None = None,
    ) -> list[MemoryRecord]:
        """Records this user may see (their own and shared ones), oldest first, narrowed as asked.

        A project narrows to that project's records plus the user-wide ones (no project).
        """
        args: list[object]  # SQL parameters of mixed types
        sql, args = "SELECT * FROM memories WHERE (user_id = ? OR visibility = 'shared')", [user_id]
        if ids is not None:
            sql, args = sql + f" AND id IN ({', '.join('?' for _ in ids)})", [*args, *ids]
        if project_id is not None:
            sql, args = sql + " AND (project_id IS NULL OR project_id = ?)", [*args, project_id]
        if types:
            sql, args = sql + f" AND type IN ({', '.join('?' for _ in types)})", [*args, *types]
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        links = self._memory_links(user_id, [r["id"] for r in rows])
        return [self._memory(r, links.get(r["id"], [])) for r in rows]

    def _memory_links(self, user_id: int, ids: list[int]) -> dict[int, list[int]]:
        """Links to records the user may see: a link never reveals another user's private record."""
        found: dict[int, list[int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self._conn.execute(
                "SELECT l.record_id, l.other_id FROM memory_links l JOIN memories o ON o.id = l.other_id"
                f" WHERE l.record_id IN ({', '.join('?' for _ in chunk)}) AND (o.user_id = ? OR o.visibility = 'shared')"
                " ORDER BY l.other_id", (*chunk, user_id))
            for record_id, other_id in rows:
                found.setdefault(record_id, []).append(other_id)
        return found

    @staticmethod
    def _memory(row: sqlite3.Row, contradicts: list[int]) -> MemoryRecord:
        return MemoryRecord(
            id=row["id"], user_id=row["user_id"], project_id=row["project_id"], visibility=row["visibility"],
            type=row["type"], text=row["text"], conditions=json.loads(row["conditions_json"]),
            evidence=json.loads(row["evidence_json"]), tags=json.loads(row["tags_json"]),
            stages=json.loads(row["stages_json"]), importance=row["importance"], confidence=row["confidence"],
            support=row["support"], contradictions=row["contradictions"], contradicts=contradicts,
            created=row["created_at"], updated=row["updated_at"], reinforced=row["reinforced_at"],
        )

    def support_memory(self, memory_id: int, confidence: float) -> None:
        stamp = now()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE memories SET support = support + 1, confidence = ?, updated_at = ?, reinforced_at = ?"
                " WHERE id = ?", (confidence, stamp, stamp, memory_id))
            self._bump(conn, "memory")

    def contradict_memory(self, old_id: int, new_id: int, old_confidence: float) -> None:
        """Lower the old record's confidence, count the conflict on both, link them both ways: all or nothing."""
        stamp = now()
        with self.transaction() as conn:
            conn.execute("UPDATE memories SET confidence = ?, updated_at = ? WHERE id = ?", (old_confidence, stamp, old_id))
            conn.execute("UPDATE memories SET contradictions = contradictions + 1 WHERE id IN (?, ?)", (old_id, new_id))
            conn.executemany(
                "INSERT OR IGNORE INTO memory_links (record_id, other_id, relation, created_at)"
                " VALUES (?, ?, 'contradicts', ?)", [(old_id, new_id, stamp), (new_id, old_id, stamp)])
            self._bump(conn, "memory")

    def delete_memory(self, memory_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM memories WHERE id = ?", (memory_id,))
            self._bump(conn, "memory")

    def project_named(self, user_id: int, name: str) -> int | None:
        row = self._conn.execute("SELECT id FROM projects WHERE user_id = ? AND name = ?", (user_id, name)).fetchone()
        return None if row is None else row[0]

    def project_names(self, user_id: int) -> dict[int, str]:
        return dict(self._conn.execute("SELECT id, name FROM projects WHERE user_id = ?", (user_id,)).fetchall())

    # --- end of knowledge ---


_TRIAL_COLUMNS = (
    "run_id", "parent_id", "proposer", "hypothesis", "diff", "command", "resources_json", "knobs_json",
    "executor", "job_id", "status", "kept", "score", "metrics_json", "failure", "detail", "logs_tail",
    "workdir", "started_at", "ended_at",
)


def _trial_values(trial: Trial) -> tuple:
    data = trial.model_dump()
    for field in ("resources", "knobs", "metrics"):
        data[f"{field}_json"] = json.dumps(data.pop(field))
    data["kept"] = int(data["kept"])
    return tuple(data[column] for column in _TRIAL_COLUMNS)


def _trial(row: sqlite3.Row) -> Trial:
    data = dict(row)
    for field in ("resources", "knobs", "metrics"):
        data[field] = json.loads(data.pop(f"{field}_json"))
    return Trial(**data)


def _llm_call(row: sqlite3.Row) -> LLMCall:
    return LLMCall(
        key=row["key"], user_id=row["user_id"], run_id=row["run_id"], stage=row["stage"],
        provider=row["provider"], model=row["model"], request=json.loads(row["request_json"]),
        response_text=row["response_text"], finish_reason=row["finish_reason"], failure=row["failure"],
        prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
        cost_usd=row["cost_usd"], latency_s=row["latency_s"],
        prompt_ids=_json_or_none(row["prompt_ids_json"]), output_ids=_json_or_none(row["output_ids_json"]),
    )


def _stage_plan(row: sqlite3.Row) -> StagePlanRecord:
    return StagePlanRecord(
        id=row["id"], user_id=row["user_id"], run_id=row["run_id"], stage=row["stage"], provider=row["provider"],
        model=row["model"], prompt=json.loads(row["prompt_json"]), prompt_ids=_json_or_none(row["prompt_ids_json"]),
        output_text=row["output_text"], output_ids=_json_or_none(row["output_ids_json"]),
        plan=json.loads(row["plan_json"]), created_at=row["created_at"],
    )


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT just wrote (sqlite3 leaves lastrowid None only before any insert)."""
    if cursor.lastrowid is None:
        raise StoreError("the database wrote no row")
    return cursor.lastrowid


def _json_or_null(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def _json_or_none(text: str | None) -> object:
    return None if text is None else json.loads(text)


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
