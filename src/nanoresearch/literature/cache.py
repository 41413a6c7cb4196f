"""On-disk answers of online sources, so a repeated query costs no HTTP and a re-run sees the same papers.

One JSON file per (source, query, limit) under `<cache_dir>/literature/`, named by the sha256 of
the three. Entries do not expire: a run that is resumed or replayed must read what it read before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ValidationError

from nanoresearch.literature.source import Paper

log = logging.getLogger(__name__)


class CachedAnswer(BaseModel):
    source: str
    query: str
    limit: int
    fetched_at: str
    papers: list[Paper]


def normalise_query(query: str) -> str:
    # Search APIs ignore case and spacing, so "Adam  optimizer" and "adam optimizer" share an entry.
    return " ".join(query.split()).lower()


class LiteratureCache:
    def __init__(self, cache_dir: Path) -> None:
        self.folder = Path(cache_dir) / "literature"

    def path_for(self, source: str, query: str, limit: int) -> Path:
        identity = json.dumps([source, normalise_query(query), limit])
        return self.folder / f"{hashlib.sha256(identity.encode()).hexdigest()}.json"

    def get(self, source: str, query: str, limit: int) -> list[Paper] | None:
        path = self.path_for(source, query, limit)
        if not path.exists():
            return None
        try:
            return CachedAnswer.model_validate_json(path.read_bytes()).papers
        except (OSError, ValidationError) as exc:
            # A damaged entry is only a miss: the source is asked again and the entry rewritten.
            log.warning("ignoring unreadable literature cache entry %s: %s", path, str(exc).splitlines()[0])
            return None

    def put(self, source: str, query: str, limit: int, papers: list[Paper]) -> None:
        answer = CachedAnswer(
            source=source, query=query, limit=limit, fetched_at=datetime.now(timezone.utc).isoformat(), papers=papers
        )
        path = self.path_for(source, query, limit)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves half a file that a later run would have to discard.
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(answer.model_dump_json(indent=1))
        os.replace(temporary, path)
