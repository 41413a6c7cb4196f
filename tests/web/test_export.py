"""`nanoresearch export RUN --html FILE`: one self-contained page of the run that needs nothing else."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pytest
from web_world import SCRIPT, World

from helpers import run_cli


def export(capsys, monkeypatch, run_id: str, target: Path):  # noqa: ANN001, ANN201 - pytest fixtures, a CliResult
    return run_cli(capsys, monkeypatch, "export", run_id, "--html", str(target))


def test_the_html_export_holds_the_run_and_needs_nothing_else(world: World, tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    target = tmp_path / "run.html"
    result = export(capsys, monkeypatch, world.run.id, target)
    assert result.code == 0, result.err
    page = target.read_text()
    svg = (Path(world.run.workspace) / "figures" / "curve.svg").read_bytes()
    assert f'src="data:image/svg+xml;base64,{base64.b64encode(svg).decode()}"' in page  # the figure inside
    for trial in (world.baseline, world.kept, world.failed):
        assert f'href="#trial-{trial.id}"' in page and f'id="trial-{trial.id}"' in page  # tree nodes jump in the page
    assert '<span class="add">+lr = 0.05</span>' in page  # the kept trial's diff
    assert '<tr class="stage done"><td>ideation</td>' in page and "overall 5/10" in page  # timeline and review
    assert '<td class="ci">[0.675, 0.725]</td>' in page and "lr-sweep v2" in page
    # Offline and inert: no address to load anything from, no form, no script, run text escaped.
    assert not re.search(r'(src|href)="(?!data:|#)', page), re.search(r'(src|href)="(?!data:|#)[^"]*', page).group()
    assert "<form" not in page and "<script" not in page and html.escape(SCRIPT, quote=False) in page
    assert "default-src 'none'; img-src data:" in page


def test_exporting_another_users_run_or_into_a_missing_folder_is_refused(world: World, tmp_path: Path, capsys,
                                                                          monkeypatch) -> None:  # noqa: ANN001
    other = export(capsys, monkeypatch, world.other.id, tmp_path / "x.html")
    assert other.code != 0 and f"no run {world.other.id!r}" in other.err and not (tmp_path / "x.html").exists()
    missing = export(capsys, monkeypatch, world.run.id, tmp_path / "nowhere" / "run.html")
    assert missing.code != 0 and "does not exist" in missing.err and "Traceback" not in missing.err


@pytest.mark.parametrize("size", [10, 6 * 1024 * 1024])
def test_a_figure_too_large_to_inline_is_named_instead(world: World, tmp_path: Path, capsys, monkeypatch,
                                                       size: int) -> None:  # noqa: ANN001
    (Path(world.run.workspace) / "figures" / "big.png").write_bytes(b"\x89PNG" + b"0" * size)
    assert export(capsys, monkeypatch, world.run.id, tmp_path / "run.html").code == 0
    page = (tmp_path / "run.html").read_text()
    assert ("figures/big.png (too large to inline)" in page) == (size > 5 * 1024 * 1024)
    assert ('src="data:image/png;base64,' in page) == (size < 5 * 1024 * 1024)
