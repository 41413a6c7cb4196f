-- Two kinds of run share this table: research runs (`nanoresearch run`) and trial sessions
-- (`nanoresearch trials run`). The kind used to be guessed from the run's untyped config (a research
-- run's carried its goal); now it is a column, and the config is the run's typed options
-- (store/models.py RunOptions), which no longer repeat the goal: the row has it. A budget stays as it
-- was written: trial sessions wrote the limits, research runs the text, which RunOptions reads too.
-- Columns are added and renamed, never the table rebuilt, so 0008's trigger on `runs` stays.
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'research' CHECK (kind IN ('research', 'trials'));
UPDATE runs SET kind = 'trials' WHERE json_type(config_json, '$.goal') IS NULL;
UPDATE runs SET config_json = json_remove(config_json, '$.goal');
ALTER TABLE runs RENAME COLUMN config_json TO options_json;
