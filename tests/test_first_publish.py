"""A document's first analysis, before the files it is traced with are read (what the server
publishes at once): it shows only what those files cannot change, and never anything the
complete analysis withdraws or words differently, nor a fix the complete analysis would not
make (analysis/settled.py, engine.analyze(wait=False))."""

import sys
from pathlib import Path

import pytest

from switcheroo_lsp.analysis import settled
from switcheroo_lsp.analysis.index import facts_of_files, scan
from switcheroo_lsp.engine import Workspace, analyze

ROOT = Path(__file__).parent / "fixtures" / "workspace"
PROJECTS = sorted(p for p in ROOT.iterdir() if p.is_dir() and "." not in p.name)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


def shown(f):
    return f.code, f.span, f.message, f.fixable, f.severity


def first_and_complete(root: Path, path: Path, target: str, scanned: bool, facts: bool = True):
    text = path.read_text()
    complete = analyze(text, target, workspace=Workspace([root]), path=str(path))
    ws = Workspace([root], background=True)          # the server's: the index comes from a worker
    if scanned:
        indexed(ws, root, facts)
    return analyze(text, target, workspace=ws, path=str(path), wait=False), complete


def indexed(ws: Workspace, root: Path, facts: bool = True) -> Workspace:
    """What the server's index hands its workspace: the scan, then (`facts`) every file's facts."""
    snap = scan([root])
    ws.apply_scan(snap)
    if facts:
        ws.apply_facts(facts_of_files(list(snap.files)))
    return ws


def assert_nothing_withdrawn(root: Path, target: str, scanned: bool, facts: bool = True) -> int:
    """Every finding of every file's first analysis is in its complete one, word for word, and
    the fixes of those findings edit the same way. Returns how many were shown first."""
    count = 0
    for path in sorted(root.rglob("*.py")):
        first, complete = first_and_complete(root, path, target, scanned, facts)
        final = {shown(f): f for f in complete.findings}
        for f in first.findings:
            assert shown(f) in final, f"{path.name}:{f.span.start.line + 1} {f.code} withdrawn: {f.message}"
        count += len(first.findings)
        keys = {f.key for f in first.findings if f.fixable}
        if keys and not first.complete:
            same = {final[shown(f)].key for f in first.findings if f.fixable}
            assert [(e.span, e.new_text) for e in first.fix_all(keys)] == \
                   [(e.span, e.new_text) for e in complete.fix_all(same)]
    return count


@pytest.mark.parametrize("facts", [True, False], ids=["indexed", "scanned-only"])
@pytest.mark.parametrize("target", ["optax", "flax-nnx"])
@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_a_first_analysis_never_shows_what_the_complete_one_withdraws(project, target, facts):
    # scanned-only: who imports whom is known, the files' facts are not yet (the worker has not
    # sent them): what their texts could hold stands in for them.
    assert_nothing_withdrawn(project.resolve(), target, scanned=True, facts=facts)


def test_torch_s_functions_are_not_taken_for_the_project_s_methods():
    root = (ROOT / "library_calls").resolve()
    # `loss = F.cross_entropy(...)` is torch's function, even though the project has a method of
    # that name returning an optimizer: probe()'s optimizer is shown at once, before the index's
    # facts arrive, and Objective's SGD is not taken to reach `loss.backward()`.
    first, complete = first_and_complete(root, root / "train.py", "optax", scanned=True, facts=False)
    assert sorted({f.span.start.line + 1 for f in first.findings}) == [10, 12, 15]
    assert all(f.fixable for f in complete.findings)
    called = root / "proj" / "objectives.py"
    _, builder = first_and_complete(root, called, "optax", scanned=True)
    assert [(f.code, f.fixable) for f in builder.findings] == [("OPX101", True)]


def test_a_name_bound_in_the_statement_is_not_the_library_s_module():
    project = {}
    neighbours = settled.Neighbours(frozenset(), frozenset({"cross_entropy"}))
    library = "import torch.nn.functional as F\n\ndef f(x):\n    return F.cross_entropy(x)\n"
    local = "import torch.nn.functional as F\n\ndef f(x):\n    F = pick()\n    return F.cross_entropy(x)\n"
    unknown = "def f(obj, x):\n    return obj.cross_entropy(x)\n"
    kind_of = lambda module, name: project.get((module, name), settled.EXTERNAL)  # noqa: E731
    assert settled.withheld_lines(library, kind_of, set(), neighbours) == []
    assert settled.withheld_lines(local, kind_of, set(), neighbours) == [(2, 4)]
    assert settled.withheld_lines(unknown, kind_of, set(), neighbours) == [(0, 1)]
    project[("proj", None)] = project[("proj", "losses")] = settled.MODULE
    twice = "from proj import losses as F\nimport torch.nn.functional as F\n\ndef f(x):\n    return F.cross_entropy(x)\n"
    assert settled.withheld_lines(twice, kind_of, set(), neighbours) == [(3, 4)]


def test_read_chunk_by_chunk_the_rule_gives_what_the_whole_text_gives():
    from switcheroo_lsp.document.parsed import ParsedDocument
    neighbours = settled.Neighbours(frozenset({"optimizer"}), frozenset({"configure"}))
    kind_of = lambda module, name: settled.OPEN if module.startswith(("proj", ".")) else settled.EXTERNAL  # noqa: E731
    texts = [p.read_text() for p in sorted(ROOT.rglob("*.py"))]
    assert len(texts) > 20
    for text in texts:
        doc = ParsedDocument.parse(text)
        chunks = list(zip(doc.start_lines, doc.chunks))
        for exported in (None, set(), {"main", "fit"}):
            assert settled.withheld_lines(text, kind_of, exported, neighbours, chunks) == \
                settled.withheld_lines(text, kind_of, exported, neighbours)
    # An edit reads again only the statements it changed.
    doc = ParsedDocument.parse(texts[0])
    settled.withheld_lines(texts[0], kind_of, None, neighbours, list(zip(doc.start_lines, doc.chunks)))
    edited = doc.replaced(texts[0] + "\nx = 1\n")
    kept = [c for c in edited.chunks if "settled" in c.cache]
    assert len(kept) == len(doc.chunks) - 1 or len(kept) == len(doc.chunks)


def test_what_no_other_file_can_reach_is_shown_at_once_and_the_rest_waits():
    root = (ROOT / "withheld").resolve()
    first, complete = first_and_complete(root, root / "train.py", "optax", scanned=True)
    assert not first.complete and {p.name for p in first.pending} == {"helpers.py", "other.py"}
    lines = lambda findings: sorted((f.span.start.line + 1, f.code) for f in findings)  # noqa: E731
    # probe()'s optimizer is its own: shown at once, with its fix.
    assert lines(first.findings) == [(11, "OPX101"), (11, "OPX203"), (13, "OPX103"), (15, "OPX102"), (15, "OPX203")]
    assert first.fix_all({f.key for f in first.findings if f.fixable})
    # fit() is called by other.py with an optimizer that is not torch's: traced from main() alone
    # its steps would be flagged, and withdrawn once other.py is read. They are withheld.
    naive = analyze((root / "train.py").read_text())
    assert (21, "OPX103") in lines(naive.findings) and (21, "OPX103") not in lines(complete.findings)
    assert (21, "OPX103") not in lines(first.findings)
    # main()'s optimizer comes from helpers.py: its steps come with the complete analysis.
    assert (31, "OPX102") in lines(complete.findings) and (31, "OPX102") not in lines(first.findings)


def test_until_the_importers_are_known_every_name_may_be_imported():
    root = (ROOT / "withheld").resolve()
    first, _ = first_and_complete(root, root / "train.py", "optax", scanned=False)
    assert not first.complete and first.findings == []


def test_a_document_whose_files_are_all_read_is_complete_at_once():
    root = (ROOT / "withheld").resolve()
    ws = indexed(Workspace([root], background=True), root)
    path = root / "train.py"
    for p in ws.unit_paths(path):
        ws.parsed(p)
    first = analyze(path.read_text(), workspace=ws, path=str(path), wait=False)
    assert first.complete and not first.pending and not first.withheld


def test_a_generated_project_withdraws_nothing(tmp_path):
    from project import project
    script = project(tmp_path, 6)
    assert_nothing_withdrawn(tmp_path.resolve(), "optax", scanned=True)
    first, complete = first_and_complete(tmp_path.resolve(), script.resolve(), "optax", scanned=True)
    # The probes and the fine-tuner are the script's own; the warm-up steps of the optimizer
    # built in proj/optim_setup.py wait for it.
    assert 0 < len(first.findings) < len(complete.findings)


# -- the rule, statement by statement -------------------------------------------------------------------

def withheld(text: str, project: dict | None = None, exported=frozenset()) -> list[int]:
    """1-based first lines of the statements withheld; `project` maps (module, name) of the
    project's imports to what they bind (anything else is a library)."""
    project = project or {}

    def kind_of(module, name):
        return project.get((module, name), project.get((module, None), settled.EXTERNAL) if name else
                           project.get((module, None), settled.EXTERNAL))
    ranges = settled.withheld_lines(text, kind_of, None if exported is None else set(exported))
    return None if ranges is None else [first + 1 for first, _ in ranges]


def test_statements_linked_to_a_project_import_wait_and_unlinked_ones_do_not():
    text = ("import torch\nfrom proj.factory import build\nfrom proj import cfg\nLR = 1e-3\n"
            "def a():\n    return build()\n"            # 5: uses a project function
            "def b():\n    return a()\n"                # 7: linked to a()
            "def c():\n    return torch.optim.SGD([], lr=LR)\n"    # 9: LR is a constant: not linked
            "def d():\n    return cfg.SCALE\n"          # 11: a constant of a project module
            "def e():\n    return cfg.make()\n")        # 13: a function of a project module
    project = {("proj.factory", "build"): settled.OPEN, ("proj", "cfg"): settled.MODULE,
               ("proj.cfg", "SCALE"): settled.CONST, ("proj.cfg", "make"): settled.OPEN}
    assert withheld(text, project) == [5, 7, 13]


def test_names_other_files_import_wait_with_what_they_reach():
    text = "def fit(opt):\n    opt.step()\n\ndef main():\n    fit(make())\n\ndef alone():\n    pass\n"
    assert withheld(text, exported={"fit"}) == [1, 4]
    assert withheld(text, exported=set()) == []
    assert withheld(text, exported=None) == [1, 4, 7]          # any file may import any name
    # (the engine does not ask then: until the importers are known it withholds everything)


def test_local_and_star_imports_of_the_project_are_links_too():
    project = {("proj", "helper"): settled.OPEN, ("proj", None): settled.MODULE}
    assert withheld("def f():\n    from proj import helper\n    return helper()\n\ndef g():\n    pass\n",
                    project) == [1]
    assert withheld("from proj import *\n\ndef f():\n    return unknown()\n\ndef g():\n    return len([])\n",
                    project) == [3]
    assert withheld("def f(:\n") is None
