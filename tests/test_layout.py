"""The shape the README draws: a stage never imports another stage, the store depends on
nothing of ours, and the shared modules (errors, wording, local files) import no stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tendermatch"
STAGES = ("crawler", "matcher", "notifier", "web")
SHARED = ("errors", "wording", "localfiles")


def imported_parts(path: Path, *, package_root: Path = PACKAGE) -> set[str]:
    """The top-level parts of ``tendermatch`` (``store``, ``matcher``...) that ``path`` imports."""
    package = path.relative_to(package_root.parent).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = (*base, *(node.module.split(".") if node.module else ()))
                names = [target] if node.module else [(*target, alias.name) for alias in node.names]
            else:
                names = [tuple((node.module or "").split("."))]
        elif isinstance(node, ast.Import):
            names = [tuple(alias.name.split(".")) for alias in node.names]
        else:
            continue
        found |= {name[1] for name in names if len(name) > 1 and name[0] == "tendermatch"}
    return found


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


@pytest.mark.parametrize("part", [*STAGES, "store", *SHARED])
def test_each_part_imports_only_what_the_shape_allows(part):
    # The shared modules may read the record types in store/records.py, nothing else of the store.
    allowed = {"store": {"errors"}, "errors": set(), "wording": {*SHARED, "store"}, "localfiles": {*SHARED, "store"}}
    allowed_here = allowed.get(part, {"store", *SHARED})
    files = [PACKAGE / f"{part}.py"] if (PACKAGE / f"{part}.py").exists() else sorted((PACKAGE / part).rglob("*.py"))
    assert files
    wrong = {f"{path.relative_to(PACKAGE)} imports {other}"
             for path in files for other in imported_parts(path) - {part} - allowed_here}
    assert not wrong, sorted(wrong)


def test_the_check_sees_a_stage_importing_another(tmp_path):
    probe = tmp_path / "tendermatch" / "matcher" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from ..notifier import texts\nfrom . import rules\nimport tendermatch.web.plugin\n")
    assert imported_parts(probe, package_root=tmp_path / "tendermatch") == {"notifier", "matcher", "web"}
