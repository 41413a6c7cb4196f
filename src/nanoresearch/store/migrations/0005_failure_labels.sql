-- Two failure labels: 'disk' (a trial's working copy went past its disk limit) and
-- 'bad_proposal' (the model gave no usable edit: a weak model, not a broken server). SQLite
-- cannot change a CHECK in place, so the table is rebuilt. The new table refers to itself by
-- its temporary name; RENAME rewrites that reference to `trials`.
CREATE TABLE trials_new (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    parent_id     INTEGER REFERENCES trials_new(id),
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
    failure       TEXT CHECK (failure IN ('crash', 'timeout', 'oom', 'disk', 'budget_overrun', 'gate_miss',
                                          'illegal_edit', 'bad_proposal', 'infra')),
    detail        TEXT NOT NULL DEFAULT '',
    logs_tail     TEXT NOT NULL DEFAULT '',
    workdir       TEXT NOT NULL DEFAULT '',
    started_at    REAL,
    ended_at      REAL,
    created_at    TEXT NOT NULL
);
INSERT INTO trials_new SELECT * FROM trials;
DROP TABLE trials;
ALTER TABLE trials_new RENAME TO trials;
CREATE INDEX trials_by_run ON trials (run_id, id);
