-- The research pipeline: exact token ids of local calls (the policy trains on them), the planner's
-- stage plans, and feedback tied to the plan it judges (the SDPO triple: prompt, output, feedback).
ALTER TABLE llm_calls ADD COLUMN prompt_ids_json TEXT;
ALTER TABLE llm_calls ADD COLUMN output_ids_json TEXT;

CREATE TABLE stage_plans (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage           TEXT NOT NULL,
    provider        TEXT NOT NULL,
    model           TEXT NOT NULL,
    prompt_json     TEXT NOT NULL,           -- the planner's messages, exactly as sent
    prompt_ids_json TEXT,                    -- their token ids (local planner only)
    output_text     TEXT NOT NULL,
    output_ids_json TEXT,                    -- the planner's output token ids (local planner only)
    plan_json       TEXT NOT NULL,           -- the parsed StagePlan
    created_at      TEXT NOT NULL,
    UNIQUE (run_id, stage)
);

ALTER TABLE feedback ADD COLUMN plan_id INTEGER REFERENCES stage_plans(id) ON DELETE SET NULL;
