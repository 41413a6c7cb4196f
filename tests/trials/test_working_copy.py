"""A trial's working copy: a disk limit enforced for real, and cleaned of undeclared outputs."""

from pathlib import Path

import pytest
from tiny import make_loop, proposal

from helpers import ScriptedProvider
from nanoresearch.compute.budget import Budget
from nanoresearch.errors import UserError
from nanoresearch.trials.task import clean_working_copy, load_task

# Ten files, each under the per-file limit, together past the disk limit; then it lingers.
FILL = 'import time; [open(f"big{i}.bin", "wb").write(b"x" * (3 << 20)) for i in range(10)]; time.sleep(30)'


def test_many_files_under_the_file_limit_hit_the_disk_limit_and_are_removed(store, tiny_task, tmp_path):
    tiny_task.resources.disk_mb, tiny_task.resources.max_file_mb = 16, 4
    tiny_task.resources.time_s = 60
    provider = ScriptedProvider(proposal("fill the disk", ('print("working")', FILL)))
    loop = make_loop(store, tiny_task, provider, Budget(trials=2), tmp_path, max_debug=0)
    loop.run()
    baseline, filler = store.trials(loop.run_id)
    assert baseline.score == 1.0  # a normal trial still scores
    assert (filler.status, filler.failure) == ("failed", "disk"), filler.detail
    assert "disk limit of 16 MB" in filler.detail
    workdir = Path(filler.workdir)
    assert not list(workdir.glob("big*.bin")) and (workdir / "train.py").is_file()


def test_cleaning_keeps_the_task_files_and_declared_outputs_only(tiny_task, tmp_path):
    tiny_task.outputs = ["out.json", "plots/*.png"]
    workdir = tmp_path / "work"
    (workdir / "plots").mkdir(parents=True)
    (workdir / "cache" / "deep").mkdir(parents=True)
    for name in ("train.py", "out.json", "plots/a.png", "plots/a.tmp", "cache/deep/x", "stray.bin"):
        (workdir / name).write_text("x")
    (workdir / "link").symlink_to(tiny_task.folder / "train.py")

    removed = clean_working_copy(tiny_task, workdir)

    left = sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*"))
    assert left == ["out.json", "plots", "plots/a.png", "train.py"]
    assert sorted(removed) == ["cache", "link", "plots/a.tmp", "stray.bin"]
    assert (tiny_task.folder / "train.py").is_file()  # the link was removed, not followed


def test_the_disk_limit_is_set_in_task_toml_and_checked(tiny_folder):
    manifest = tiny_folder / "task.toml"
    manifest.write_text(manifest.read_text().replace("time_s = 4", "time_s = 4\ndisk_mb = 64"))
    assert load_task(tiny_folder).resources.disk_mb == 64
    manifest.write_text(manifest.read_text().replace("disk_mb = 64", "disk_mb = 0"))
    with pytest.raises(UserError, match="resources.disk_mb"):
        load_task(tiny_folder)
