-- Co-evolution levels 1 and 2: the skill bank's index, memory records and their links.
-- SKILL.md folders on disk are the truth about skills; `skills` is their index, re-synced when a
-- file's size, mtime or hash changes. `document` is the text retrieval scores (BM25 and the
-- embedding); `vector` is its embedding as float32 bytes, filled lazily and tagged with the
-- embedder that made it. Scoring runs in memory per scope (knowledge/retrieval.py), and
-- `knowledge_versions` tells those in-memory indexes, in every process, when to reload.
CREATE TABLE skills (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,   -- NULL: a shared skill
    name          TEXT NOT NULL,
    path          TEXT NOT NULL,                                     -- the skill's folder
    file_sha256   TEXT NOT NULL,
    file_mtime_ns INTEGER NOT NULL,
    file_size     INTEGER NOT NULL,
    skill_json    TEXT NOT NULL,                                     -- the parsed SKILL.md
    document      TEXT NOT NULL,
    tags_json     TEXT NOT NULL DEFAULT '[]',
    stages_json   TEXT NOT NULL DEFAULT '[]',
    uses          INTEGER NOT NULL DEFAULT 0,
    successes     INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL,
    embedder      TEXT,
    vector        BLOB
);
CREATE UNIQUE INDEX skills_by_owner_name ON skills (ifnull(user_id, 0), name);

CREATE TABLE memories (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id      INTEGER REFERENCES projects(id) ON DELETE CASCADE,   -- NULL: for all the user's projects
    visibility      TEXT NOT NULL CHECK (visibility IN ('private', 'shared')),
    type            TEXT NOT NULL CHECK (type IN ('preference', 'constraint', 'failed_hypothesis',
                                                  'promising_direction', 'result', 'decision', 'lesson')),
    text            TEXT NOT NULL,
    conditions_json TEXT NOT NULL DEFAULT '{}',
    evidence_json   TEXT NOT NULL DEFAULT '[]',
    tags_json       TEXT NOT NULL DEFAULT '[]',
    stages_json     TEXT NOT NULL DEFAULT '[]',
    importance      REAL NOT NULL,
    confidence      REAL NOT NULL,
    support         INTEGER NOT NULL DEFAULT 0,
    contradictions  INTEGER NOT NULL DEFAULT 0,
    document        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    reinforced_at   TEXT NOT NULL,
    embedder        TEXT,
    vector          BLOB
);
CREATE INDEX memories_by_owner ON memories (user_id, type, text);  -- also finds a record's twin
CREATE INDEX memories_shared ON memories (visibility) WHERE visibility = 'shared';

-- Links between records, stored in both directions (a contradiction is symmetric).
CREATE TABLE memory_links (
    record_id   INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    other_id    INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    relation    TEXT NOT NULL CHECK (relation IN ('contradicts')),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (record_id, other_id, relation)
);

-- Bumped by every write that changes what retrieval sees, in the same transaction.
CREATE TABLE knowledge_versions (
    kind     TEXT PRIMARY KEY CHECK (kind IN ('skill', 'memory')),
    version  INTEGER NOT NULL
);
INSERT INTO knowledge_versions (kind, version) VALUES ('skill', 0), ('memory', 0);
