-- Issue 14, housekeeping. A home folder may be copied or moved: paths inside it are stored relative
-- to it (the folder that holds this database), and the store makes them absolute again when it
-- reads them. A run's workspace is always `users/<user>/runs/<run id>` under the home that made it,
-- so an absolute path ending so is converted, whatever home it named; any other path (a workspace
-- somewhere else) stays as it is. A trial's working copy and a generated task folder, which live in
-- the workspace, follow it (both are converted before the workspace, which locates them).
UPDATE trials SET workdir = (
    SELECT 'users/' || users.name || '/runs/' || runs.id || substr(trials.workdir, length(runs.workspace) + 1)
    FROM runs JOIN projects ON projects.id = runs.project_id JOIN users ON users.id = projects.user_id
    WHERE runs.id = trials.run_id
)
WHERE EXISTS (
    SELECT 1 FROM runs JOIN projects ON projects.id = runs.project_id JOIN users ON users.id = projects.user_id
    WHERE runs.id = trials.run_id AND runs.workspace LIKE '/%'
      AND substr(runs.workspace, -length('/users/' || users.name || '/runs/' || runs.id)) = '/users/' || users.name || '/runs/' || runs.id
      AND substr(trials.workdir, 1, length(runs.workspace) + 1) = runs.workspace || '/'
);

UPDATE runs SET
    options_json = CASE
        WHEN substr(json_extract(options_json, '$.task'), 1, length(workspace) + 1) = workspace || '/'
        THEN json_set(options_json, '$.task', owned.relative || substr(json_extract(options_json, '$.task'), length(workspace) + 1))
        ELSE options_json
    END,
    workspace = owned.relative
FROM (
    SELECT runs.id AS run_id, 'users/' || users.name || '/runs/' || runs.id AS relative
    FROM runs JOIN projects ON projects.id = runs.project_id JOIN users ON users.id = projects.user_id
) AS owned
WHERE owned.run_id = runs.id AND runs.workspace LIKE '/%'
  AND substr(runs.workspace, -length(owned.relative) - 1) = '/' || owned.relative;

-- An archived run is kept but hidden from `nanoresearch list` (shown by `list --all`).
ALTER TABLE runs ADD COLUMN archived_at TEXT;
