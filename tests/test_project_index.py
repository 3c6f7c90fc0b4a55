"""The project index: which files a document is traced with, kept fresh as texts change."""

from pathlib import Path

from switcheroo_lsp.analysis.index import scan
from switcheroo_lsp.engine import Workspace


def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from .loop import fit\n")
    (tmp_path / "pkg" / "loop.py").write_text("def fit(model, optimizer):\n    optimizer.step()\n")
    (tmp_path / "main.py").write_text("import torch\nfrom pkg import fit\n")
    (tmp_path / "other.py").write_text("import os\n")
    return tmp_path


def names(units) -> set[str]:
    return {Path(u.path).name for u in units}


def test_a_file_is_traced_with_its_imports_and_its_importers(tmp_path):
    root = project(tmp_path)
    ws = Workspace([root])
    assert names(ws.units_for(root / "main.py")) == {"__init__.py", "loop.py"}
    # loop.py is re-exported by the package: the package's importers call it.
    assert names(ws.units_for(root / "pkg" / "loop.py")) >= {"__init__.py", "main.py"}
    assert ws.module_name(root / "pkg" / "loop.py") == ("pkg.loop", False)


def test_typing_keeps_the_index_until_the_imports_change(tmp_path):
    root = project(tmp_path)
    ws = Workspace([root], background=True)
    # In the background (the server), until the index has arrived only imports are followed.
    assert not ws.knows_importers
    assert names(ws.units_for(root / "pkg" / "loop.py")) == set()
    ws.apply_scan(scan([root]))
    assert ws.knows_importers
    assert names(ws.units_for(root / "pkg" / "loop.py")) == {"__init__.py", "main.py"}
    other = root / "other.py"
    ws.set_open(other, "import os\nx = 1\n")
    assert ws.indexed                      # same imports: who imports whom stands
    ws.set_open(other, "import os\nfrom pkg.loop import fit\n")
    assert not ws.indexed                  # a new import: worked out again when asked
    assert "other.py" in names(ws.units_for(root / "pkg" / "loop.py"))


def test_open_texts_win_over_the_disk(tmp_path):
    root = project(tmp_path)
    ws = Workspace([root])
    ws.set_open(root / "main.py", "import torch\n")
    assert names(ws.units_for(root / "main.py")) == set()
    ws.set_open(root / "main.py", None)
    assert names(ws.units_for(root / "main.py")) == {"__init__.py", "loop.py"}
