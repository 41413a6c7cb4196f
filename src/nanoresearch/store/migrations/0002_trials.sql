-- Trials of the closed experiment loop. Each trial is a node of a lineage tree (parent_id); the
-- kept trial with the best score is the head. Code is stored as a unified diff against the parent.
CREATE TABLE trials (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    parent_id     INTEGER REFERENCES trials(id),
    proposer      TEXT NOT NULL,
    hypothesis    TEXT NOT NULL DEFAULT '',
    diff          TEXT NOT NULL DEFAULT '',
    command       TEXT NOT NULL,
    resources_json TEXT NOT NULL DEFAULT '{}',
    knobs_json    TEXT NOT NULL DEFAULT '{}',
    executor      TEXT NOT NULL,
    job_id        TEXT,
    status        TEXT NOT NULL CHECK (status IN ('proposed', 'running', 'done', 'failed')),
    kept          INTEGER NOT NULL DEFAULT 0,
    score         REAL,
    metrics_json  TEXT NOT NULL DEFAULT '{}',
    failure       TEXT CHECK (failure IN ('crash', 'timeout', 'oom', 'budget_overrun', 'gate_miss', 'illegal_edit', 'infra')),
    detail        TEXT NOT NULL DEFAULT '',
    logs_tail     TEXT NOT NULL DEFAULT '',
    workdir       TEXT NOT NULL DEFAULT '',
    started_at    REAL,
    ended_at      REAL,
    created_at    TEXT NOT NULL
);
CREATE INDEX trials_by_run ON trials (run_id, id);
