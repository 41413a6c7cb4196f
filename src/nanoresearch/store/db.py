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

from nanoresearch.errors import StoreError
from nanoresearch.store.models import (
    Feedback,
    FeedbackAction,
    LedgerKind,
    LLMCall,
    Run,
    RunStatus,
    StagePlanRecord,
    Step,
    StepStatus,
    Trial,
)

BUSY_TIMEOUT_MS = 30_000


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
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self.migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the database {self.path}: {exc}",
                hint="check that the folder is writable, or set NANORESEARCH_HOME to another folder",
            ) from None

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
        """Apply pending migrations; safe when several processes open a new database at once."""
        with self.transaction() as conn:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, sql in migrations():
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

    def create_run(self, run_id: str, project_id: int, goal: str, workspace: str, config: dict) -> Run:
        stamp = now()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, project_id, goal, status, workspace, config_json, created_at, updated_at)"
                " VALUES (?, ?, ?, 'created', ?, ?, ?, ?)",
                (run_id, project_id, goal, workspace, json.dumps(config), stamp, stamp),
            )
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r}", hint="`nanoresearch list` shows your runs")
        return _run(row)

    def list_runs(self, user_id: int) -> list[Run]:
        rows = self._conn.execute(
            "SELECT runs.* FROM runs JOIN projects ON projects.id = runs.project_id"
            " WHERE projects.user_id = ? ORDER BY runs.created_at",
            (user_id,),
        )
        return [_run(row) for row in rows]

    def set_run_status(self, run_id: str, status: RunStatus) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET status = ?, updated_at = ? WHERE id = ?", (status, now(), run_id))

    def set_run_config(self, run_id: str, config: dict) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET config_json = ?, updated_at = ? WHERE id = ?", (json.dumps(config), now(), run_id))

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
            call_id = conn.execute(
                "INSERT INTO llm_calls (key, user_id, run_id, stage, provider, model, request_json,"
                " response_text, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_s,"
                " prompt_ids_json, output_ids_json, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (call.key, call.user_id, call.run_id, call.stage, call.provider, call.model,
                 json.dumps(call.request, sort_keys=True), call.response_text, call.finish_reason,
                 call.prompt_tokens, call.completion_tokens, call.cost_usd, call.latency_s,
                 _json_or_null(call.prompt_ids), _json_or_null(call.output_ids), now()),
            ).lastrowid
            charges = [("tokens", call.prompt_tokens + call.completion_tokens)]
            if call.cost_usd:
                charges.append(("usd", call.cost_usd))
            for kind, amount in charges:
                self._insert_charge(conn, call.user_id, call.run_id, kind, amount, f"llm_call:{call_id}")
            return call_id

    def find_llm_call(self, user_id: int, key: str, run_id: str | None = None) -> LLMCall | None:
        """The latest recording of this exact call by this user (never another user's), in one run if given."""
        sql, args = "SELECT * FROM llm_calls WHERE user_id = ? AND key = ?", [user_id, key]
        if run_id is not None:
            sql, args = sql + " AND run_id = ?", [*args, run_id]
        row = self._conn.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
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
            trial_id = conn.execute(
                f"INSERT INTO trials ({', '.join(_TRIAL_COLUMNS)}, created_at) VALUES ({placeholders}, ?)",
                (*_trial_values(trial), now()),
            ).lastrowid
        return self.trial(trial_id)

    def update_trial(self, trial: Trial) -> None:
        assignments = ", ".join(f"{column} = ?" for column in _TRIAL_COLUMNS)
        with self.transaction() as conn:
            conn.execute(f"UPDATE trials SET {assignments} WHERE id = ?", (*_trial_values(trial), trial.id))

    def trial(self, trial_id: int) -> Trial:
        row = self._conn.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            raise StoreError(f"no trial {trial_id}", hint="`nanoresearch trials list` shows the trials")
        return _trial(row)

    def trials(self, run_id: str) -> list[Trial]:
        return [_trial(r) for r in self._conn.execute("SELECT * FROM trials WHERE run_id = ? ORDER BY id", (run_id,))]

    # feedback and budget ledger

    # stage plans and feedback

    def save_stage_plan(self, plan: StagePlanRecord) -> int:
        """The planner's call for a stage; a stage re-planned after a redirect replaces its row."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM stage_plans WHERE run_id = ? AND stage = ?", (plan.run_id, plan.stage))
            return conn.execute(
                "INSERT INTO stage_plans (user_id, run_id, stage, provider, model, prompt_json, prompt_ids_json,"
                " output_text, output_ids_json, plan_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (plan.user_id, plan.run_id, plan.stage, plan.provider, plan.model, json.dumps(plan.prompt),
                 _json_or_null(plan.prompt_ids), plan.output_text, _json_or_null(plan.output_ids),
                 json.dumps(plan.plan), now()),
            ).lastrowid

    def stage_plans(self, user_id: int, run_id: str | None = None) -> list[StagePlanRecord]:
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
            return cursor.lastrowid

    def feedback(self, user_id: int, run_id: str | None = None) -> list[Feedback]:
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


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"], project_id=row["project_id"], goal=row["goal"], status=row["status"],
        workspace=row["workspace"], config=json.loads(row["config_json"]),
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _llm_call(row: sqlite3.Row) -> LLMCall:
    return LLMCall(
        key=row["key"], user_id=row["user_id"], run_id=row["run_id"], stage=row["stage"],
        provider=row["provider"], model=row["model"], request=json.loads(row["request_json"]),
        response_text=row["response_text"], finish_reason=row["finish_reason"],
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


def _json_or_null(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def _json_or_none(text: str | None) -> object:
    return None if text is None else json.loads(text)
