"""The server's project index and the neighbours of open documents, off the event loop.

`Indexer` builds the workspace index (analysis/index.py) from the disk cache (analysis/cache.py)
where files did not change: first what every file imports, in a thread (who imports whom: a
document's importers are known from then on), then each file's facts, in a worker process
(analysis/index_worker.py) that writes the cache. It
shows LSP work-done progress while it runs, and hands each result to the workspace on the event
loop. `Loader` parses the files an open document is traced with, one top-level statement per
event-loop turn, so that typing, hovers and code actions are answered in between; when a
document's files are all read its analysis is completed and published again if it changed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import itertools
import json
import logging
import os
import sys
from pathlib import Path

from lsprotocol import types as t

from ..analysis import cache, index
from ..engine import Workspace as Project
from . import gc_pause
from .progress import WorkDone
from .remembered import Remembered

log = logging.getLogger("switcheroo")
_tokens = itertools.count(1)


# The worker is started with `-c`, not `-m`: its working directory (the user's project, where the
# server runs) must not come first on sys.path (a `json.py` there would be imported in place of
# the standard library's), and nothing else of the server is imported.
_BOOT = ("import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
         "from switcheroo_lsp.analysis.index_worker import main; raise SystemExit(main())")
_FINDINGS_BOOT = ("import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
                  "from switcheroo_lsp.frontends.findings_worker import main; raise SystemExit(main())")
# SWITCHEROO_BACKGROUND=0: no background pass over the workspace's findings (findings_worker.py).
BACKGROUND = "SWITCHEROO_BACKGROUND"


FACTS_WITH_SCAN = 1 << 20     # bytes of cached facts read with the scan, at most
# A document opened while the server starts waits for the import scan (who imports it), this
# long at most, unless the scan has more files to read than this: a first publish with findings.
SCAN_WAIT = 0.25
SCAN_READS = 1000


def _scan_and_link(roots: list[str], listed_hook=None):
    """In the index's thread: the scan, and who imports whom worked out on a workspace of its
    own (nothing the event loop touches); both cached. And the findings remembered from earlier
    analyses (remembered.py)."""
    # The cached facts of unchanged files come with the scan, so that a document's first
    # analysis can settle what they show; but reading JSON holds the GIL throughout, and the
    # event loop waits meanwhile: a large project's facts (4 MB at 3,000 files: a quarter of a
    # second) come from the worker, a batch at a time, like those it computes.
    with gc_pause.paused():      # a workspace's worth of records, kept: no collection walks them meanwhile
        cached = cache.load_index(roots, facts=cache.size(roots, "facts") <= FACTS_WITH_SCAN)
        snap = index.scan(roots, cached, listed_hook)
        linked = Project(roots, background=True)
        linked.apply_scan(snap)
        linked.link(snap)
        if cached is None or cached.files != snap.files or cached.links != snap.links:
            cache.save_index(snap, facts=False)
        return snap, linked, Remembered.load(roots)


class Indexer:
    def __init__(self, ls):
        self.ls = ls
        self.task: asyncio.Task | None = None
        self.worker: asyncio.subprocess.Process | None = None
        self.again = False
        self.client_ready: asyncio.Event | None = None     # `initialized`: progress may be shown
        self.scan: concurrent.futures.Future | None = None   # the import scan's thread
        self.unknown_files: int | None = None    # how many files the scan reads (the cache knows the rest)
        self._threads = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="switcheroo-index")
        self.finder: asyncio.subprocess.Process | None = None     # the background pass over findings
        self.finding: asyncio.Task | None = None

    def take_scan(self) -> bool:
        """The import scan, if its thread finished while the event loop was busy (analysing a
        document): handed to the workspace now, so that the document's first publish knows
        who imports it. True when it was."""
        scan = self.scan
        if scan is None or not scan.done() or scan.cancelled() or scan.exception() is not None:
            return False
        if self.ls.codebase.knows_importers:
            return False
        _, linked, remembered = scan.result()
        self._apply(linked, remembered)
        return True

    async def scan_in_flight(self, timeout: float = SCAN_WAIT) -> None:
        """Wait, `timeout` seconds at most, for the import scan if it is running: a document
        opened as the server starts is analysed once who imports it is known, rather than
        alongside the scan's thread (which shares the GIL: both took longer) with every
        finding withheld."""
        scan = self.scan
        if scan is None or scan.done():
            return
        waiting = asyncio.wrap_future(scan)
        deadline = asyncio.get_running_loop().time() + timeout
        while not waiting.done() and asyncio.get_running_loop().time() < deadline:
            if self.unknown_files is not None and self.unknown_files > SCAN_READS:
                return          # thousands of files to read: not worth waiting for
            await asyncio.wait({waiting}, timeout=0.01)

    def _listed(self, unknown: int) -> None:      # in the scan's thread
        self.unknown_files = unknown

    def _apply(self, linked, remembered) -> None:
        with gc_pause.paused():
            self.ls.codebase.adopt(linked)      # the scan as the thread applied it, and its links
        if self.ls.remembered is None:
            self.ls.remembered = remembered

    def initialized(self) -> None:
        self._ready().set()

    def _ready(self) -> asyncio.Event:
        if self.client_ready is None:
            self.client_ready = asyncio.Event()
        return self.client_ready

    def start(self, scan: bool = True) -> None:
        """Build the index (`scan`: list and link the workspace anew; else, after files changed
        that the workspace was told about, bring their facts and the cache up to date); once
        more after the current build when asked during one."""
        if not self.ls.codebase.roots:
            return
        if self.task is not None and not self.task.done():
            self.again = True
            return
        self.task = asyncio.get_running_loop().create_task(self._build(scan))

    async def _build(self, scan: bool = True) -> None:
        loop = asyncio.get_running_loop()
        roots = [str(r) for r in self.ls.codebase.roots]
        progress = _Progress(self.ls, "switcheroo: indexing the workspace")
        ready = self._ready()

        async def begin():
            await ready.wait()
            await progress.begin("reading imports" if scan else "reading changed files")
        begun = loop.create_task(begin())
        try:
            read = 0
            if scan:
                # Who imports whom first, in a thread (files and the cache are read, mostly
                # without the GIL). From then on a document's first analysis knows its importers.
                self.unknown_files = None
                self.scan = self._threads.submit(_scan_and_link, roots, self._listed)
                snap, linked, remembered = await asyncio.wrap_future(self.scan)
                self._apply(linked, remembered)
                self.ls.on_index()
                read = len(snap.read)
            await begun
            # Then each file's facts (what it binds...), from the cache or worked out, in a worker
            # process that writes the cache and sends them all, a batch at a time.
            total = cached = 0
            package = str(Path(__file__).resolve().parents[2])
            self.worker = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _BOOT, *roots, cwd=package, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, limit=1 << 26)
            done = 0
            while True:
                line = await self.worker.stdout.readline()
                if not line:
                    break
                with gc_pause.paused():     # a batch of facts, kept
                    message = json.loads(line)
                    if "facts" in message:
                        self.ls.codebase.apply_facts({p: (v[0], v[1]) for p, v in message["facts"].items()})
                if "missing" in message:
                    total, cached = message["files"], message["files"] - message["missing"]
                    done = cached
                elif "facts" in message:
                    if not message.get("cached"):
                        done += len(message["facts"])
                elif message.get("done"):
                    break
                progress.report(f"{done}/{total} files", done, total)
            await self.worker.wait()
            self.ls.on_facts()
            progress.end(f"{total} files indexed, {min(cached, total - read)} from the cache")
            if os.environ.get(BACKGROUND, "1") != "0" and (self.finding is None or self.finding.done()):
                self.finding = loop.create_task(self._remember(roots))
        except asyncio.CancelledError:
            begun.cancel()
            progress.end("cancelled")
            raise
        except Exception:
            log.exception("indexing the workspace failed")
            if ready.is_set():
                await begun
            progress.end("failed")
        finally:
            self.worker = None
            if self.again:
                self.again = False
                self.task = loop.create_task(self._build(False))

    async def _remember(self, roots: list[str]) -> None:
        """The background pass (findings_worker.py), then what it remembered, for documents
        opened from now on."""
        package = str(Path(__file__).resolve().parents[2])
        progress = _Progress(self.ls, "switcheroo: analysing the workspace", "findings")
        outcome = "failed"
        try:
            await progress.begin("files with optimizer code")
            self.finder = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _FINDINGS_BOOT, self.ls.editor_settings.target or "", *roots, cwd=package,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL)
            if await self.finder.wait() != 0:
                log.warning("the background pass over the workspace's findings failed")
                return
            found = await asyncio.get_running_loop().run_in_executor(self._threads, Remembered.load, roots)
            if self.ls.remembered is None:
                self.ls.remembered = found
            else:
                self.ls.remembered.entries.update(found.entries)
            outcome = "done"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:
            log.exception("the background pass over the workspace's findings failed")
        finally:
            self.finder = None
            progress.end(outcome)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.finding is not None:
            self.finding.cancel()
        self._threads.shutdown(wait=False, cancel_futures=True)
        for proc in (self.worker, self.finder):
            if proc is not None and proc.returncode is None:
                proc.kill()


class _Progress(WorkDone):
    """The index's work-done progress where the client supports it."""

    def __init__(self, ls, title: str, kind: str = "index"):
        super().__init__(ls, f"switcheroo-{kind}-{next(_tokens)}")
        self.title = title
        self.begun = False

    async def begin(self, message: str) -> None:
        self.begun = await self.open(t.WorkDoneProgressBegin(
            title=self.title, message=message, percentage=0, cancellable=False))

    def report(self, message: str, done: int, total: int) -> None:
        if self.enabled and self.begun:
            self.ls.work_done_progress.report(self.token, t.WorkDoneProgressReport(
                message=message, percentage=int(100 * done / total) if total else 100))

    def end(self, message: str) -> None:
        if self.enabled and self.begun:
            self.ls.work_done_progress.end(self.token, t.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)
            self.enabled = False


class Loader:
    """Parses the files open documents are traced with, a statement per event-loop turn."""

    def __init__(self, ls):
        self.ls = ls
        self.wanted: dict[str, tuple[Path, ...]] = {}     # uri -> the files its analysis waits for
        self.task: asyncio.Task | None = None

    def want(self, uri: str, paths) -> None:
        self.wanted[uri] = tuple(paths)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def forget(self, uri: str) -> None:
        self.wanted.pop(uri, None)

    async def _run(self) -> None:
        codebase = self.ls.codebase
        while True:
            todo = [p for paths in self.wanted.values() for p in paths if not codebase.loaded(p)]
            if todo:
                try:
                    for _ in codebase.parse_steps(todo[0]):
                        await asyncio.sleep(0)
                except Exception:
                    log.exception("reading %s failed", todo[0])
                # Kept for as long as the file does not change: out of the cyclic GC's sight, or its
                # full collections walk every neighbour's tree during the next analysis (lsp.py).
                gc.freeze()
                if not codebase.loaded(todo[0]):        # unreadable, or changed meanwhile
                    for uri, paths in list(self.wanted.items()):
                        if todo[0] in paths:
                            self.wanted[uri] = tuple(p for p in paths if p != todo[0])
            ready = [uri for uri, paths in self.wanted.items() if all(codebase.loaded(p) for p in paths)]
            for uri in ready:
                del self.wanted[uri]
                self.ls.complete(uri)
            if not self.wanted:
                return
            await asyncio.sleep(0)
