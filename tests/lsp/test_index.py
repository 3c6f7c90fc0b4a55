"""Over the real protocol: a document's first diagnostics do not wait for the workspace index or
for the files it is traced with; what those add comes later, in a publish of the same version,
and only when it changes something; nothing published is ever withdrawn; the index is cached on
disk across server starts, and a corrupt cache is discarded.

Each test starts its own server on its own project (its index is what is under test)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from pathlib import Path

import pytest_lsp
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig

from lsp_support import DOC_DIR, NVIM11, SERVER, VSCODE, Client, capabilities, make_client

HERE = DOC_DIR / "index-tests"
CACHE = HERE / "cache"
ENV = {**os.environ, "SWITCHEROO_DEBOUNCE_MS": "0", "SWITCHEROO_CACHE_DIR": str(CACHE)}
_n = itertools.count()

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "server"))
from switcheroo_lsp.analysis import cache  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "workspace" / "withheld"
# Nothing other files can change: a construction that binds no name (printed); still, it
# waits until the index says who imports the file.
ALONE = "import torch\n\nprint(torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=0.1))\n"


def new_project() -> Path:
    root = HERE / f"project_{os.getpid()}_{next(_n)}"
    root.mkdir(parents=True)
    for f in FIXTURE.glob("*.py"):
        (root / f.name).write_text(f.read_text())
    (root / "alone.py").write_text(ALONE)
    return root.resolve()


def cache_file(root: Path) -> Path:
    os.environ[cache.ENV] = str(CACHE)          # where the server puts it (this process asks cache.py)
    return cache.path_for([str(root)], "index")


def _fixture(name: str, profiles: list[str], ids: list[str], env: dict = ENV):
    @pytest_lsp.fixture(name=name, params=profiles, ids=ids,
                        config=ClientServerConfig(server_command=SERVER, server_env=env, client_factory=make_client))
    async def fixture(request, lsp_client: Client):
        lsp_client.profile = request.param
        yield
        await lsp_client.shutdown_session()
    return fixture


client = _fixture("client", [VSCODE, NVIM11], ["vscode", "nvim11-pull"])
pushing = _fixture("pushing", [VSCODE], ["vscode"])        # a client that is pushed diagnostics


async def start(client: Client, root: Path) -> None:
    client.init_result = await client.initialize_session(t.InitializeParams(
        capabilities=capabilities(client.profile), root_uri=root.as_uri(),
        workspace_folders=[t.WorkspaceFolder(uri=root.as_uri(), name="project")]))


def open_file(client: Client, path: Path):
    return client.open(path.read_text(), uri=path.as_uri())


def codes_at(diagnostics) -> list[tuple[int, str]]:
    return sorted((d.range.start.line + 1, d.code) for d in diagnostics)


def publishes(client: Client, doc) -> list[list[tuple[int, str]]]:
    return [codes_at(p.diagnostics) for p in client.published if p.uri == doc.uri and p.version == doc.version]


async def settle(client: Client, doc, want, timeout: float = 30.0) -> list[tuple[int, str]]:
    """The document's diagnostics once `want(codes)` holds, pushed or pulled."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if client.pulls:
            found = codes_at(await client.pull(doc))
        else:
            await client.barrier()
            found = publishes(client, doc)[-1] if publishes(client, doc) else None
        if found is not None and want(found) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


PROBE = [(11, "OPX101"), (11, "OPX203"), (13, "OPX103"), (15, "OPX102"), (15, "OPX203")]
# fit()'s steps may act on main()'s Adam or on other.py's optimizer: both stay torch (OPX202);
# main()'s other optimizer comes from helpers.py.
MAIN = [(21, "OPX202"), (23, "OPX202"), (27, "OPX202"), (29, "OPX103"), (31, "OPX102"), (31, "OPX203")]


async def test_the_first_publish_does_not_wait_for_the_index(pushing: Client):
    client = pushing
    root = new_project()
    gate = cache_file(root)
    gate.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(gate)         # the index's worker blocks reading its cache until the test writes
    try:
        await start(client, root)
        alone = open_file(client, root / "alone.py")
        train = open_file(client, root / "train.py")
        # Who imports them is not known yet: any file may, and reach anything they define.
        for doc in (alone, train):
            first = await client.wait_published(lambda p: p.uri == doc.uri and p.version == 1)
            assert codes_at(first.diagnostics) == []
        await client.barrier()
        assert not any(values and values[-1].kind == "end" for values in client.index_builds())
    finally:
        await _release(gate)
    await client.indexed()
    # The garbage the gate let through was discarded; the index rebuilt and cached as JSON.
    assert "0 from the cache" in client.index_builds()[0][-1].message
    assert json.loads(gate.read_text())["tool"] == "switcheroo-lsp index"
    assert await settle(client, alone, lambda c: c == [(3, "OPX101")]) == [(3, "OPX101")]
    assert await settle(client, train, lambda c: c == sorted(PROBE + MAIN)) == sorted(PROBE + MAIN)


async def _release(gate: Path, timeout: float = 30.0) -> None:
    """Write garbage into the gate once the worker has opened it (it may still be starting)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:             # no reader yet
            await asyncio.sleep(0.05)
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(b"this is not a cache")
        return


async def test_what_other_files_add_comes_later_and_nothing_is_withdrawn(client: Client):
    root = new_project()
    await start(client, root)
    await client.indexed()
    train = open_file(client, root / "train.py")
    final = await settle(client, train, lambda c: c == sorted(PROBE + MAIN))
    assert final == sorted(PROBE + MAIN)
    if not client.pulls:
        seen = publishes(client, train)
        # At once: probe()'s findings (its optimizer is its own); then the rest, which needs
        # helpers.py and other.py. Traced from this file alone, fit()'s steps would have shown
        # as convertible (OPX103, OPX102): they never appear.
        assert seen[0] == PROBE and seen[-1] == sorted(PROBE + MAIN)
        for before, after in zip(seen, seen[1:]):
            assert set(before) <= set(after), f"withdrawn: {set(before) - set(after)}"
        assert all((21, "OPX103") not in s and (23, "OPX102") not in s for s in seen)


async def test_a_later_publish_only_when_something_changed(pushing: Client):
    client = pushing
    root = new_project()
    # probe() is all there is to report; helpers.py, which it imports, changes nothing.
    (root / "local.py").write_text((root / "train.py").read_text().split("\n\ndef fit")[0] + "\n")
    (root / "later.py").write_text("from helpers import make_optimizer\nfrom other import Lookahead\n\n"
                                   "opt = make_optimizer(model)\nopt.step()\n")
    await start(client, root)
    await client.indexed()
    local = open_file(client, root / "local.py")
    assert codes_at(await client.pushed(local)) == PROBE
    # later.py waits for helpers.py (read for local.py first) and other.py: once its complete
    # publish is in, local.py's complete analysis has been made, and it changed nothing.
    later = open_file(client, root / "later.py")
    assert await settle(client, later, lambda c: c == [(5, "OPX102"), (5, "OPX203")]) == [(5, "OPX102"), (5, "OPX203")]
    await client.barrier()
    assert publishes(client, local) == [PROBE]


async def test_the_index_is_read_from_the_cache_on_the_next_start(client: Client):
    root = _shared_project()
    await start(client, root)
    await client.indexed()
    message = client.index_builds()[-1][-1].message
    files = sum(1 for _ in root.glob("*.py"))
    if _shared_project.started:
        assert message == f"{files} files indexed, {files} from the cache"
    else:
        assert message == f"{files} files indexed, 0 from the cache"
    _shared_project.started = True
    train = open_file(client, root / "train.py")
    assert await settle(client, train, lambda c: c == sorted(PROBE + MAIN)) == sorted(PROBE + MAIN)


def _shared_project() -> Path:
    """One project for both clients of the cache test: the second server finds the first's cache."""
    if _shared_project.root is None:
        _shared_project.root = new_project()
    return _shared_project.root


_shared_project.root = None
_shared_project.started = False


async def test_a_corrupt_cache_is_discarded(client: Client):
    root = new_project()
    path = cache_file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"tool": "switcheroo-lsp index", "format": 1, "files": {"x": [1, 2]}}')
    await start(client, root)
    await client.indexed()
    assert client.index_builds()[-1][-1].message.endswith(" 0 from the cache")
    data = json.loads(path.read_text())
    assert set(data["files"]) == {str(p) for p in root.glob("*.py")}
    train = open_file(client, root / "train.py")
    assert await settle(client, train, lambda c: c == sorted(PROBE + MAIN)) == sorted(PROBE + MAIN)


# -- findings remembered from an earlier analysis (frontends/remembered.py) ---------------------------

def check(root: Path) -> None:
    """`switcheroo check` over the project: it remembers every file's findings in the cache."""
    import subprocess
    done = subprocess.run([sys.executable, "-m", "switcheroo_lsp", "check", str(root)], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "OPX102" in done.stdout, done.stderr


async def test_findings_checked_before_are_the_first_publish(client: Client):
    root = new_project()
    # A long neighbour: its parse keeps the complete analysis away for a while after the open
    # (the first pull of a client that pulls comes before it).
    helpers = root / "helpers.py"
    helpers.write_text(helpers.read_text() + "".join(f"\n\ndef unused_{i}(x):\n    return x + {i}\n" for i in range(3000)))
    check(root)
    await start(client, root)
    await client.indexed()
    train = open_file(client, root / "train.py")
    # What other files add is there at once (without the remembered findings the first publish
    # is PROBE alone: the tests above), and the complete analysis publishes nothing new.
    first = await client.pull(train) if client.pulls else await client.pushed(train)
    assert codes_at(first) == sorted(PROBE + MAIN)
    assert await settle(client, train, lambda c: True) == sorted(PROBE + MAIN)
    if client.pulls:
        return
    await client.barrier()
    assert publishes(client, train) == [sorted(PROBE + MAIN)]
    first = [p for p in client.published if p.uri == train.uri][0].diagnostics
    assert all(d.data["key"] >= 0 and d.code_description.href.endswith(d.code.lower()) for d in first)


async def test_unsaved_changes_are_not_taken_for_the_text_checked(pushing: Client):
    client = pushing
    root = new_project()
    check(root)
    await start(client, root)
    await client.indexed()
    train = client.open((root / "train.py").read_text() + "# more\n", uri=(root / "train.py").as_uri())
    assert codes_at(await client.pushed(train)) == PROBE
    assert await settle(client, train, lambda c: c == sorted(PROBE + MAIN)) == sorted(PROBE + MAIN)


async def test_a_changed_neighbour_is_not_taken_for_the_one_checked(pushing: Client):
    client = pushing
    root = new_project()
    check(root)
    helpers = root / "helpers.py"
    helpers.write_text(helpers.read_text() + "\n# changed after the check\n")
    await start(client, root)
    await client.indexed()
    train = open_file(client, root / "train.py")
    assert codes_at(await client.pushed(train)) == PROBE
    assert await settle(client, train, lambda c: c == sorted(PROBE + MAIN)) == sorted(PROBE + MAIN)


async def test_a_neighbour_changed_after_the_start_is_not_taken_for_the_one_checked(pushing: Client):
    # No editor told the server (no file watcher): its size and mtime say it is not what the
    # index read.
    client = pushing
    root = new_project()
    check(root)
    await start(client, root)
    await client.indexed()
    helpers = root / "helpers.py"
    helpers.write_text(helpers.read_text() + "\n# changed after the start\n")
    train = open_file(client, root / "train.py")
    assert codes_at(await client.pushed(train)) == PROBE
    assert await settle(client, train, lambda c: c == sorted(PROBE + MAIN)) == sorted(PROBE + MAIN)


remembering = _fixture("remembering", [VSCODE, VSCODE], ["first start", "next start"])


async def test_the_server_remembers_for_its_next_start(remembering: Client):
    client = remembering
    if _remembering.root is None:
        _remembering.root = new_project()
    root = _remembering.root
    await start(client, root)
    await client.indexed()
    train = open_file(client, root / "train.py")
    first = codes_at(await client.pushed(train))
    assert first == (sorted(PROBE + MAIN) if _remembering.started else PROBE)
    _remembering.started = True
    assert await settle(client, train, lambda c: c == sorted(PROBE + MAIN)) == sorted(PROBE + MAIN)


class _remembering:
    root: Path | None = None
    started = False


background = _fixture("background", [VSCODE], ["vscode"], env={**ENV, "SWITCHEROO_BACKGROUND": "1"})


async def test_the_background_pass_remembers_the_workspace_s_findings(background: Client):
    client = background
    root = new_project()
    (root / "notes.py").write_text("NOTES = 'nothing to do with training'\n")
    os.environ[cache.ENV] = str(CACHE)
    results = cache.path_for([str(root)], "results")
    await start(client, root)
    await client.indexed()
    # After the index, the files with optimizer code are analysed as `check` would, in a
    # process of their own; a file opened afterwards shows every finding at once.
    deadline = asyncio.get_running_loop().time() + 120
    while not any(str(token).startswith("switcheroo-findings-") and values and values[-1].kind == "end"
                  for token, values in client.progress_reports.items()):
        assert asyncio.get_running_loop().time() < deadline, "the background pass did not end"
        await asyncio.sleep(0.05)
    assert [v for k, v in client.progress_reports.items() if str(k).startswith("switcheroo-findings-")
            ][0][-1].message == "done"
    entries = json.loads(results.read_text())["entries"].values()
    # alone.py, helpers.py, other.py, train.py; not notes.py (no optimizer code).
    assert len(entries) == 4
    assert {Path(e["rows"][0]["path"]).name for e in entries if e["rows"]} >= {"train.py", "helpers.py"}
    train = open_file(client, root / "train.py")
    assert codes_at(await client.pushed(train)) == sorted(PROBE + MAIN)
