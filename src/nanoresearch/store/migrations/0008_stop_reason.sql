-- Why a run stopped before its end, when it was not a failure or a pause: 'budget' (a unit of its
-- budget is spent; `resume --budget` gives it more). NULL otherwise. The run's status is 'paused'
-- meanwhile, since it can be continued; any later status change clears the reason.
ALTER TABLE runs ADD COLUMN stop_reason TEXT CHECK (stop_reason IN ('budget'));

-- Issue 19, job side. The time trials ran, summed over trials, keeps its own name (`trial_s`):
-- `wall_s` is no charge any more but the run's clock (below). SQLite cannot change a CHECK, so the
-- ledger is copied into a table that allows the new name.
CREATE TABLE ledger_new (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    run_id      TEXT REFERENCES runs(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('tokens', 'usd', 'gpu_hours', 'cpu_hours', 'trial_s')),
    amount      REAL NOT NULL,
    source      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
INSERT INTO ledger_new (id, user_id, run_id, kind, amount, source, created_at)
    SELECT id, user_id, run_id, CASE kind WHEN 'wall_s' THEN 'trial_s' ELSE kind END, amount, source, created_at
    FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;
CREATE INDEX ledger_by_run ON ledger (run_id, kind);

-- `wall` is the clock: a run's active seconds, paused time excluded, kept by a trigger whenever
-- its status changes (whoever changes it): `running_since` is when the current
-- running stretch began (unix seconds; NULL while not running), `active_s` the seconds of the
-- stretches before. A process that died leaves its run `running`; when the run is set running again
-- (resumed), that stretch counts up to the run's last recorded activity, not up to the resume.
ALTER TABLE runs ADD COLUMN active_s REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN running_since REAL;

CREATE TRIGGER runs_active_time AFTER UPDATE OF status ON runs
BEGIN
    UPDATE runs SET
        active_s = active_s + CASE
            WHEN OLD.status != 'running' OR OLD.running_since IS NULL THEN 0
            WHEN NEW.status = 'running' THEN max(0, max(
                (julianday(OLD.updated_at) - 2440587.5) * 86400.0,
                coalesce((SELECT (julianday(max(created_at)) - 2440587.5) * 86400.0 FROM ledger WHERE run_id = NEW.id), 0),
                coalesce((SELECT max(ended_at) FROM trials WHERE run_id = NEW.id), 0)
            ) - OLD.running_since)
            ELSE max(0, (julianday('now') - 2440587.5) * 86400.0 - OLD.running_since)
        END,
        running_since = CASE WHEN NEW.status = 'running' THEN (julianday('now') - 2440587.5) * 86400.0 END
    WHERE id = NEW.id;
END;
