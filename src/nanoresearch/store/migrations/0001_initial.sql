-- Users, projects, runs, step checkpoints, LLM calls, feedback, budget ledger.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    goal        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    goal        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('created', 'running', 'paused', 'failed', 'done')),
    workspace   TEXT NOT NULL,
    config_json TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- One row per (run, stage, step): the checkpoint that resume reads.
CREATE TABLE steps (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage        TEXT NOT NULL,
    step         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    payload_json TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (run_id, stage, step)
);

-- Every LLM call, keyed by a stable hash of (provider, model, messages, params) for replay.
CREATE TABLE llm_calls (
    id                INTEGER PRIMARY KEY,
    key               TEXT NOT NULL,
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    run_id            TEXT REFERENCES runs(id) ON DELETE SET NULL,
    stage             TEXT,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    request_json      TEXT NOT NULL,
    response_text     TEXT NOT NULL,
    finish_reason     TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL,
    latency_s         REAL NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL
);
CREATE INDEX llm_calls_by_key ON llm_calls (user_id, key);
CREATE INDEX llm_calls_by_run ON llm_calls (run_id);

CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('approve', 'comment', 'redirect')),
    text        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);

-- Append-only: what each run spent, in each unit the budget limits.
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    run_id      TEXT REFERENCES runs(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('tokens', 'usd', 'gpu_hours', 'cpu_hours', 'wall_s')),
    amount      REAL NOT NULL,
    source      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX ledger_by_run ON ledger (run_id, kind);
