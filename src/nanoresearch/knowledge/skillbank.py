"""The skill bank: reusable research procedures as `SKILL.md` folders (the Agent Skills format).

    ~/.nanoresearch/users/<user>/skills/<name>/SKILL.md   a user's private skills
    ~/.nanoresearch/shared/skills/<name>/SKILL.md         skills shared on purpose, seen by every user

A SKILL.md is YAML front matter, then the procedure in markdown:

    ---
    name: warmup-before-large-lr            # Agent Skills: lowercase, digits, hyphens
    description: When and how to add a learning-rate warmup.
    tags: [optimisation, learning-rate]     # ours from here on; all optional
    stages: [planning, experiment]
    version: 2
    provenance: [{run_id: run-20261123-014519-6f47, trial_ids: [3, 5]}]
    uses: 4
    successes: 3
    created: '2026-11-23T01:45:19+00:00'
    updated: '2026-11-24T09:12:00+00:00'
    visibility: private
    license: MIT                            # keys we do not know are kept as they are
    ---
    1. ...

Scripts or templates may sit beside it; they are copied on import and export. The files are the
truth: a person may edit them by hand. The store keeps an index (for retrieval) that `sync()`
refreshes from each file's size and mtime, then its hash. Which folder a skill is in decides its
visibility. Shared skills may be changed by any user: they are a lab's common folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from nanoresearch.config import Settings
from nanoresearch.errors import UserError
from nanoresearch.knowledge.embeddings import Embedder
from nanoresearch.knowledge.retrieval import Query, Retriever, skill_document
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import Hit, Provenance, Skill, SkillFileState, utcnow

SKILL_FILE = "SKILL.md"
OUR_KEYS = ("name", "description", "tags", "stages", "version", "provenance", "uses", "successes", "created",
            "updated", "visibility")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_FORMAT_HINT = "a SKILL.md starts with a '---' line, YAML with at least name: and description:, then a '---' line"


# SKILL.md text <-> Skill


def parse_skill_md(text: str, source: Path | str) -> Skill:
    """The Skill in a SKILL.md text; a clear UserError naming `source` and the problem otherwise."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise UserError(f"{source}: no YAML front matter", hint=_FORMAT_HINT)
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: the front matter is not valid YAML: {_yaml_problem(exc)}", hint=_FORMAT_HINT) from None
    if not isinstance(data, dict):
        raise UserError(f"{source}: the front matter must be a mapping of keys to values", hint=_FORMAT_HINT)
    ours = {key: _plain(data[key]) for key in OUR_KEYS if key in data}
    extra = {str(key): value for key, value in data.items() if key not in OUR_KEYS}
    try:
        return Skill(**ours, extra=extra, body=text[match.end():])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'front matter'}: {e['msg']}" for e in exc.errors())
        raise UserError(f"{source}: {problems}", hint=_FORMAT_HINT) from None


def render_skill_md(skill: Skill) -> str:
    front: dict[str, Any] = {
        "name": skill.name,
        "description": skill.description,
        "tags": skill.tags,
        "stages": skill.stages,
        "version": skill.version,
        "provenance": [p.model_dump() for p in skill.provenance],
        "uses": skill.uses,
        "successes": skill.successes,
        "created": skill.created.isoformat(timespec="seconds"),
        "updated": skill.updated.isoformat(timespec="seconds"),
        "visibility": skill.visibility,
        **skill.extra,
    }
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None) + "---\n" + skill.body


def _plain(value: Any) -> Any:
    """YAML reads `2026-01-02` as a date; the model wants a time."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{problem} (line {mark.line + 2})" if mark is not None else problem  # +2: the '---' line, 1-based


def read_skill(folder: Path) -> Skill:
    path = folder / SKILL_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{folder} has no {SKILL_FILE}", hint="a skill is a folder with a SKILL.md in it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read: {exc}") from None
    return parse_skill_md(text, path).model_copy(update={"path": folder})


# the bank


class SkillBank:
    """One user's skills (private) plus the shared ones, on disk and indexed in the store."""

    def __init__(self, settings: Settings, store: Store, user: str | None = None, embedder: Embedder | None = None,
                 retriever: Retriever | None = None, sync: bool = True) -> None:
        self.store = store
        self.user = user or settings.user
        self.user_id = store.ensure_user(self.user)
        self.users_root = settings.home / "users"
        self.private_root = self.users_root / self.user / "skills"
        self.shared_root = settings.home / "shared" / "skills"
        self.retriever = retriever or Retriever(store, embedder)
        self.problems: list[str] = []  # SKILL.md files that could not be read at the last sync
        if sync:
            self.sync()

    # reading

    def list_skills(self) -> list[Skill]:
        """The user's own skills, then the shared ones, by name."""
        return self.store.visible_skills(self.user_id)

    def get_skill(self, name: str, shared: bool | None = None) -> Skill:
        """A skill by name: the user's own first, unless `shared` says which."""
        for skill in self.list_skills():
            if skill.name == name and (shared is None or shared == (skill.visibility == "shared")):
                return skill
        where = {None: "", True: " shared", False: " private"}[shared]
        raise UserError(f"no{where} skill named {name!r}", hint="`nanoresearch skills list` shows your skills")

    def files(self, skill: Skill) -> list[str]:
        """The files of a skill's folder besides SKILL.md (scripts, templates), relative to it."""
        assert skill.path is not None
        return sorted(str(p.relative_to(skill.path)) for p in skill.path.rglob("*") if p.is_file() and p.name != SKILL_FILE)

    def search(self, text: str, *, stage: str | None = None, tags: tuple[str, ...] = (), k: int = 5,
               min_score: float = 0.0, vector: np.ndarray | None = None) -> list[Hit]:
        """The k skills that best fit, each with its score components (see retrieval.py)."""
        query = Query(text=text, stage=stage, tags=tuple(tags), k=k, min_score=min_score, vector=vector)
        scored = self.retriever.search("skill", self.user_id, query)
        skills = {s.id: s for s in self._skills_by_id([s.id for s in scored])}
        return [Hit(item=skills[s.id], score=s.score, components=s.components) for s in scored if s.id in skills]

    # writing

    def add_skill(self, skill: Skill, files: dict[str, str | bytes] | None = None) -> Skill:
        """A new skill (its `visibility` says where), with optional files beside SKILL.md."""
        folder = self._root(skill.visibility) / skill.name
        with self._locked(skill.visibility):
            if folder.exists():
                raise UserError(f"a {skill.visibility} skill named {skill.name!r} already exists",
                                hint="update it instead, or remove it first")
            folder.mkdir(parents=True)
            for relative, content in (files or {}).items():
                _write_beside(folder, relative, content)
            return self._write(skill, folder)

    def update_skill(self, name: str, *, description: str | None = None, body: str | None = None,
                     tags: list[str] | None = None, stages: list[str] | None = None,
                     provenance: list[Provenance] | None = None, shared: bool | None = None) -> Skill:
        """A new version of a skill: the given fields replaced, provenance merged, version + 1."""
        current = self.get_skill(name, shared)
        with self._locked(current.visibility):
            skill = read_skill(self._folder(current))  # the file, not the index: a person may have edited it
            changes = {key: value for key, value in
                       {"description": description, "body": body, "tags": tags, "stages": stages}.items()
                       if value is not None}
            merged = _merge_provenance(skill.provenance, provenance or [])
            updated = Skill.model_validate({**skill.model_dump(), **changes, "provenance": merged,
                                            "version": skill.version + 1, "updated": utcnow()})
            return self._write(updated, self._folder(current))

    def record_use(self, skill: Skill | str, succeeded: bool) -> Skill:
        """Count one use of a skill by a stage, and whether that stage succeeded."""
        current = self.get_skill(skill) if isinstance(skill, str) else skill
        with self._locked(current.visibility):
            latest = read_skill(self._folder(current))
            counted = latest.model_copy(update={"uses": latest.uses + 1, "successes": latest.successes + int(succeeded)})
            return self._write(counted, self._folder(current))

    def remove_skill(self, name: str, shared: bool | None = None) -> Skill:
        skill = self.get_skill(name, shared)
        with self._locked(skill.visibility):
            shutil.rmtree(self._folder(skill))
            self.sync()
        return skill

    def edit_skill(self, name: str, shared: bool | None = None) -> Skill:
        """Open the SKILL.md in $VISUAL or $EDITOR; the edit is checked before it replaces the file."""
        current = self.get_skill(name, shared)
        folder = self._folder(current)
        original = (folder / SKILL_FILE).read_text(encoding="utf-8")
        draft = _run_editor(original, prefix=f"{current.name}-")
        edited = draft.read_text(encoding="utf-8")
        if edited == original:
            draft.unlink()
            return current
        try:
            skill = parse_skill_md(edited, folder / SKILL_FILE)
        except UserError as exc:
            raise UserError(f"{exc.message}; {name} is unchanged", hint=f"your edit is kept in {draft}") from None
        if _content_changed(skill, current) and skill.version == current.version:
            skill = skill.model_copy(update={"version": current.version + 1, "updated": utcnow()})
        saved = self._replace(current, skill)
        draft.unlink()
        return saved

    def import_skills(self, source: Path, shared: bool = False, replace: bool = False) -> list[Skill]:
        """Copy in one skill folder, or every skill folder inside `source`; all of them or none."""
        self._refuse_other_users_folder(source)
        folders = _skill_folders(source)
        for folder in folders:  # a subfolder may be a link into someone else's bank
            self._refuse_other_users_folder(folder)
        visibility = "shared" if shared else "private"
        skills = _read_all(folders)
        existing = {s.name for s in self.list_skills() if s.visibility == visibility}
        clashes = sorted(s.name for s in skills if s.name in existing)
        if clashes and not replace:
            raise UserError(f"you already have {visibility} skills named {', '.join(clashes)}",
                            hint="add --replace to overwrite them, or remove them first")
        imported = []
        for folder, skill in zip(folders, skills):
            target = self._root(visibility) / skill.name
            with self._locked(visibility):
                if target.resolve() != folder.resolve():  # re-importing a bank folder onto itself copies nothing
                    shutil.rmtree(target, ignore_errors=True)
                    shutil.copytree(folder, target, ignore=_not_copied)
                imported.append(self._write(skill.model_copy(update={"visibility": visibility}), target))
        return imported

    def _refuse_other_users_folder(self, folder: Path) -> None:
        """Another user's private skills are theirs: importing them would publish or copy them."""
        resolved, users = folder.resolve(), self.users_root.resolve()
        if resolved.is_relative_to(users) and resolved != users and resolved.relative_to(users).parts[0] != self.user:
            raise UserError(
                f"{folder} belongs to another user of this NanoResearch home; nothing imported",
                hint="ask them to export the skill (`nanoresearch skills export`) and import that copy",
            )
        if resolved == users:
            raise UserError(f"{folder} holds every user's folders; import a skill folder of your own")

    def export_skills(self, dest: Path, names: list[str] | None = None) -> list[Path]:
        """Copy skills (all the user may see, or the named ones) into `dest`, one folder each."""
        skills = [self.get_skill(n) for n in names] if names else self.list_skills()
        taken = sorted(s.name for s in skills if (dest / s.name).exists())
        if taken:
            raise UserError(f"{dest} already has folders named {', '.join(taken)}", hint="export to an empty folder")
        written = []
        for skill in skills:
            shutil.copytree(self._folder(skill), dest / skill.name, ignore=_not_copied)
            written.append(dest / skill.name)
        return written

    # the index

    def sync(self) -> list[str]:
        """Bring the index in line with the folders: new, changed, renamed and deleted SKILL.md files.
        Files that cannot be read are left out of the index and listed in `problems`."""
        self.problems = []
        for owner_id, root, visibility in ((self.user_id, self.private_root, "private"),
                                           (None, self.shared_root, "shared")):
            self._sync_root(owner_id, root, visibility)
        return self.problems

    def _sync_root(self, owner_id: int | None, root: Path, visibility: str) -> None:
        indexed = {state.path: (name, state) for name, state in self.store.skill_files(owner_id).items()}
        folders = sorted(p for p in root.iterdir() if (p / SKILL_FILE).is_file()) if root.is_dir() else []
        seen: set[str] = set()
        for folder in folders:
            name, state = indexed.pop(str(folder), (None, None))
            name = self._refresh(owner_id, folder, visibility, name, state)
            if name is not None and name in seen:
                self.problems.append(f"{folder / SKILL_FILE}: another skill in {root} is also named {name!r}")
            elif name is not None:
                seen.add(name)
        for _, state in indexed.values():
            self.store.delete_skill(state.id)

    def _refresh(self, owner_id: int | None, folder: Path, visibility: str, name: str | None,
                 state: SkillFileState | None) -> str | None:
        """Re-index one folder if its file changed; the skill's name, or None if the file is unreadable."""
        stat = (folder / SKILL_FILE).stat()
        if state is not None and (state.mtime_ns, state.size) == (stat.st_mtime_ns, stat.st_size):
            return name
        data = (folder / SKILL_FILE).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if state is not None and state.sha256 == digest:
            self.store.touch_skill_file(state.id, SkillFileState(str(folder), digest, stat.st_mtime_ns, stat.st_size))
            return name
        try:
            skill = parse_skill_md(data.decode("utf-8", errors="replace"), folder / SKILL_FILE)
        except UserError as exc:
            self.problems.append(exc.message)
            if state is not None:
                self.store.delete_skill(state.id)
            return None
        if state is not None and name != skill.name:
            self.store.delete_skill(state.id)  # renamed by hand: the index row is keyed by name
        skill = skill.model_copy(update={"visibility": visibility})
        self.store.put_skill(owner_id, skill, SkillFileState(str(folder), digest, stat.st_mtime_ns, stat.st_size),
                             skill_document(skill))
        return skill.name

    def _write(self, skill: Skill, folder: Path) -> Skill:
        """Write the SKILL.md atomically and index it; the skill as stored."""
        visibility = "shared" if folder.parent == self.shared_root else "private"
        skill = skill.model_copy(update={"visibility": visibility})  # the folder decides, whatever the file said
        data = render_skill_md(skill).encode("utf-8")
        partial = folder / f".{SKILL_FILE}.part"
        partial.write_bytes(data)
        partial.replace(folder / SKILL_FILE)
        stat = (folder / SKILL_FILE).stat()
        owner_id = self.user_id if skill.visibility == "private" else None
        state = SkillFileState(str(folder), hashlib.sha256(data).hexdigest(), stat.st_mtime_ns, stat.st_size)
        self.store.put_skill(owner_id, skill, state, skill_document(skill))
        owner = self.user if skill.visibility == "private" else None
        return skill.model_copy(update={"path": folder, "owner": owner})

    def _replace(self, current: Skill, skill: Skill) -> Skill:
        """Save an edited skill; a new name or visibility moves its folder."""
        folder, target = self._folder(current), self._root(skill.visibility) / skill.name
        with ExitStack() as locks:
            for visibility in sorted({current.visibility, skill.visibility}):  # a fixed order: no deadlock
                locks.enter_context(self._locked(visibility))
            if target != folder:
                if target.exists():
                    raise UserError(f"a {skill.visibility} skill named {skill.name!r} already exists; {current.name} is unchanged")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(folder, target)
            saved = self._write(skill, target)
            self.sync()  # drops the old row when the name or folder changed
            return saved

    def _skills_by_id(self, ids: list[int]) -> list[Skill]:
        return self.store.visible_skills(self.user_id, ids=ids) if ids else []

    def _root(self, visibility: str) -> Path:
        return self.shared_root if visibility == "shared" else self.private_root

    def _folder(self, skill: Skill) -> Path:
        """A skill's folder, which must lie in this bank (a Skill from elsewhere is refused)."""
        folder = skill.path if skill.path is not None else self._root(skill.visibility) / skill.name
        if folder.parent not in (self.private_root, self.shared_root):
            raise UserError(f"{folder} is not in {self.user}'s skill bank")
        return folder

    @contextmanager
    def _locked(self, visibility: str) -> Iterator[None]:
        """One writer at a time per folder of skills, across processes (read-modify-write of counts)."""
        root = self._root(visibility)
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _merge_provenance(old: list[Provenance], new: list[Provenance]) -> list[Provenance]:
    """One entry per run, with the union of its trial ids."""
    trials: dict[str, set[int]] = {}
    for entry in [*old, *new]:
        trials.setdefault(entry.run_id, set()).update(entry.trial_ids)
    return [Provenance(run_id=run_id, trial_ids=sorted(ids)) for run_id, ids in trials.items()]


def _content_changed(new: Skill, old: Skill) -> bool:
    fields = ("name", "description", "body", "tags", "stages")
    return any(getattr(new, f) != getattr(old, f) for f in fields)


def _write_beside(folder: Path, relative: str, content: str | bytes) -> None:
    path = (folder / relative).resolve()
    if folder.resolve() not in path.parents or path.name == SKILL_FILE:
        raise UserError(f"a skill file must stay inside the skill's folder and not be SKILL.md: {relative!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


def _skill_folders(source: Path) -> list[Path]:
    if not source.is_dir():
        raise UserError(f"{source} is not a folder", hint="import a skill folder, or a folder of skill folders")
    if (source / SKILL_FILE).is_file():
        return [source]
    folders = sorted(p for p in source.iterdir() if p.is_dir() and (p / SKILL_FILE).is_file())
    if not folders:
        raise UserError(f"no {SKILL_FILE} in {source} or in its subfolders",
                        hint="a skill is a folder with a SKILL.md (YAML front matter with name and description)")
    return folders


def _read_all(folders: list[Path]) -> list[Skill]:
    """Every skill, or one error listing every file that is wrong (so nothing is half imported)."""
    skills, problems = [], []
    for folder in folders:
        try:
            skills.append(read_skill(folder))
        except UserError as exc:
            problems.append(exc.message)
    names = [s.name for s in skills]
    problems += [f"two skills are named {n!r}" for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise UserError("nothing imported: " + "; ".join(problems), hint=_FORMAT_HINT)
    return skills


def _not_copied(folder: str, names: list[str]) -> list[str]:
    """Links could point anywhere on the machine; version-control folders are not the skill."""
    return [n for n in names if n in (".git", ".lock") or n.startswith(f".{SKILL_FILE}") or os.path.islink(os.path.join(folder, n))]


def _run_editor(text: str, prefix: str) -> Path:
    """Write `text` to a draft file, let the user edit it, return the draft (kept if the edit is bad)."""
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=".md")
    draft = Path(name)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    command = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi") + [str(draft)]
    try:
        result = subprocess.run(command, check=False)
    except FileNotFoundError:
        draft.unlink()
        raise UserError(f"the editor {command[0]!r} was not found", hint="set EDITOR, e.g. EDITOR=nano") from None
    if result.returncode != 0:
        draft.unlink()
        raise UserError(f"the editor exited with code {result.returncode}; nothing was changed")
    return draft
