"""The project index: which files a document is traced with, kept fresh as texts change."""

import json
from pathlib import Path

import pytest

from switcheroo_lsp.analysis.index import scan
from switcheroo_lsp.engine import Workspace


def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir(parents=True)
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


# -- the index: imports, facts, the cache -------------------------------------------------------------

from switcheroo_lsp.analysis import cache  # noqa: E402
from switcheroo_lsp.analysis.index import Record, file_facts, imports_of  # noqa: E402


def test_imports_are_read_across_parentheses_continuations_and_semicolons():
    text = ("import os, torch.optim as optim\n"
            "from .loop import (\n    fit,   # the loop\n    evaluate as ev,\n)\n"
            "from ..pkg.mod import \\\n    thing\n"
            "x = 1; import json\n"
            "def f():\n    from . import sibling\n"
            "from utils import *\n")
    assert imports_of(text) == [
        ("os", None), ("torch.optim", None), (".loop", (("fit", None), ("evaluate", "ev"))),
        ("..pkg.mod", (("thing", None),)), ("json", None), (".", (("sibling", None),)), ("utils", (("*", None),)),
    ]


def test_imports_over_approximate_never_under():
    # An import in a string or a comment counts (at worst an extra neighbour); `yield from`,
    # `raise ... from` and names ending in "import" are not imports.
    text = '# import train\nraise E from e\nreimport = 1\nx.import_ = 2\n'
    assert imports_of(text) == [("train", None)]
    assert imports_of("from x import (a,  # see (1)\n    b)\n") == [("x", (("a", None), ("b", None)))]


def test_facts_say_what_a_file_binds_defines_and_constructs():
    facts = file_facts(b"import torch\nfrom torch.optim import AdamW\nLR = 3e-4\nWD = LR * 10\n"
                       b"CFG = {'lr': LR, 'betas': (0.9, 0.95)}\nmodel = make()\n"
                       b"def build(m, lr=LR):\n    return AdamW(m.parameters(), lr=lr)\n"
                       b"class Trainer(Base):\n    def fit(self):\n        torch.optim.SGD([], lr=0.1)\n"
                       b"if x:\n    WD = build(model)\n")
    assert facts["binds"] == {"torch": "import", "AdamW": "import", "LR": "const", "WD": "mixed", "CFG": "const",
                              "model": "value", "build": "def", "Trainer": "class"}
    assert facts["defines"]["build"] == {"kind": "def", "params": ["m", "lr"]}
    assert facts["defines"]["Trainer"] == {"kind": "class", "bases": ["Base"], "methods": ["fit"]}
    assert facts["constructs"] == ["torch.optim.AdamW", "torch.optim.SGD"]
    assert "error" in file_facts(b"def f(:\n")


def test_the_cache_round_trips_and_a_second_scan_reads_only_what_changed(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    root = project(tmp_path / "p")
    first = scan([root])
    assert cache.save_index(first)
    loaded = cache.load_index([str(root)])
    assert loaded.files == first.files and loaded.imports == first.imports
    # A file whose size and mtime did not change is not read again: a digest planted in the
    # cache for it is kept as it is; a file that changed is read.
    main, other = str(root / "main.py"), str(root / "other.py")
    loaded.files[main] = Record(loaded.files[main].size, loaded.files[main].mtime_ns, "planted")
    loaded.imports["planted"] = [("planted", None)]
    loaded.torch["planted"] = True
    (root / "other.py").write_text("import os\nimport json\n")
    again = scan([root], loaded)
    assert again.files[main].digest == "planted" and again.imports["planted"] == [("planted", None)]
    assert again.imports[again.files[other].digest] == [("os", None), ("json", None)]


@pytest.mark.parametrize("damage", [
    b"not json at all",
    b'{"tool": "switcheroo-lsp index", "format": 1}',
    b"[1, 2, 3]",
    b"\xff\xfe\x00garbage",
])
def test_a_corrupt_cache_is_discarded_never_trusted(tmp_path, monkeypatch, damage):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    root = project(tmp_path / "p")
    cache.save_index(scan([root]))
    path = cache.path_for([str(root)], "index")
    path.write_bytes(damage)
    assert cache.load_index([str(root)]) is None
    assert not path.exists()


def test_a_cache_with_fields_of_the_wrong_type_or_written_by_other_code_is_discarded(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    root = project(tmp_path / "p")
    cache.save_index(scan([root]))
    path = cache.path_for([str(root)], "index")
    good = json.loads(path.read_text())
    for bad in ({**good, "files": {"x.py": [1, "two", "d"]}}, {**good, "imports": {"d": [["m", [[1, None]]]]}},
                {**good, "links": {"x.py": [["y.py"]]}}, {**good, "code": "another build"},
                {**good, "roots": ["/somewhere/else"]}, {**good, "format": 0}):
        path.write_text(json.dumps(bad))
        assert cache.load_index([str(root)]) is None
        assert not path.exists()
    # The facts are a file of their own, checked alike.
    snap = scan([root])
    snap.facts = {r.digest: file_facts(Path(p).read_bytes()) for p, r in snap.files.items()}
    cache.save_index(snap)
    facts = cache.path_for([str(root)], "facts")
    assert cache.load_index([str(root)]).facts == snap.facts
    good = json.loads(facts.read_text())
    for bad in ({**good, "facts": {"d": {"binds": []}}}, {**good, "facts": {"d": {**file_facts(b"x = 1"), "attrs": "x"}}},
                {**good, "code": "another build"}):
        facts.write_text(json.dumps(bad))
        assert cache.load_index([str(root)]).facts == {} and not facts.exists()


def test_the_cache_directory_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.directory() == tmp_path / "xdg" / "switcheroo-lsp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.directory() == tmp_path / "home" / ".cache" / "switcheroo-lsp"
    monkeypatch.setenv(cache.ENV, str(tmp_path / "mine"))
    assert cache.directory() == tmp_path / "mine"


def test_the_cache_is_plain_json():
    source = Path(cache.__file__).read_text() + Path(cache.__file__).with_name("index.py").read_text()
    assert "pickle" not in source.replace("never pickle", "") and "marshal" not in source


def test_who_imports_whom_is_cached_while_the_files_and_their_texts_stay(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    root = project(tmp_path / "p")
    snap = scan([root])
    ws = Workspace([root], background=True)
    ws.apply_scan(snap)
    ws.link(snap)
    main = str(root / "main.py")
    assert {Path(t).name for t, _ in snap.links[main]} == {"__init__.py"}
    cache.save_index(snap)
    # The next scan takes the links as they were (planted here: proof they are not worked out again)...
    cached = cache.load_index([str(root)])
    cached.links[main] = [[str(root / "other.py"), "other"]]
    again = scan([root], cached)
    ws = Workspace([root], background=True)
    ws.apply_scan(again)
    ws.link(again)
    assert names(ws.units_for(root / "main.py")) == {"other.py"}
    # ...unless a file appeared: the listing changed, everything is linked anew.
    (root / "new.py").write_text("import os\n")
    fresh = scan([root], cached)
    assert fresh.links == {}
    ws = Workspace([root], background=True)
    ws.apply_scan(fresh)
    ws.link(fresh)
    assert names(ws.units_for(root / "main.py")) == {"__init__.py", "loop.py"}


def test_a_second_start_has_the_cached_facts_with_the_scan(tmp_path, monkeypatch, capsys):
    """The server's scan thread hands over the cached facts with who imports whom, so that the
    first publish of a document can show what they settle; unless the facts file is large
    (its JSON would hold the GIL, and the event loop, for long): then the worker sends them."""
    from switcheroo_lsp.analysis import index_worker
    from switcheroo_lsp.frontends import indexing
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    root = project(tmp_path / "p")
    roots = [str(root.resolve())]
    snap, linked, _ = indexing._scan_and_link(roots)          # the first start: nothing cached
    assert snap.facts == {} and linked.facts(root.resolve() / "pkg" / "loop.py") is None
    index_worker.main(roots)                               # its worker writes the facts
    capsys.readouterr()
    snap, linked, _ = indexing._scan_and_link(roots)          # the next start
    loop = linked.facts(root.resolve() / "pkg" / "loop.py")
    assert loop is not None and loop["defines"]["fit"]["params"] == ["model", "optimizer"]
    monkeypatch.setattr(indexing, "FACTS_WITH_SCAN", 10)
    snap, linked, _ = indexing._scan_and_link(roots)
    assert snap.facts == {}
