"""The server's project index and the neighbours of open documents, off the event loop.

`Indexer` builds the workspace index (analysis/index.py) in a worker process, from the disk
cache (analysis/cache.py) where files did not change: first what every file imports (who
imports whom: a document's importers are known from then on), then each file's facts. It
shows LSP work-done progress while it runs, and hands each result to the workspace on the event
loop. `Loader` parses the files an open document is traced with, one top-level statement per
event-loop turn, so that typing, hovers and code actions are answered in between; when a
document's files are all read its analysis is completed and published again if it changed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lsprotocol import types as t

from ..analysis import cache, index

log = logging.getLogger("switcheroo")
BATCH = 48              # files per facts job: progress every batch
_tokens = itertools.count(1)


def refresh(roots: list[str]) -> index.Snapshot:
    """In the worker: the cached index, brought up to date with the files (imports only)."""
    cached = cache.load_index(roots)
    snap = index.scan(roots, cached)
    if cached is None or cached.files != snap.files:
        cache.save_index(snap)
    return snap


def save(snap: index.Snapshot) -> bool:
    return cache.save_index(snap)


class Indexer:
    def __init__(self, ls):
        self.ls = ls
        self.executor: ProcessPoolExecutor | None = None
        self.task: asyncio.Task | None = None
        self.again = False

    def _pool(self) -> ProcessPoolExecutor:
        if self.executor is None:
            workers = max(1, min(2, (os.cpu_count() or 2) - 1))   # leave a core to the event loop
            self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        return self.executor

    def start(self) -> None:
        """Build (or bring up to date) the index; once more after the current build when asked
        during one."""
        if not self.ls.codebase.roots:
            return
        if self.task is not None and not self.task.done():
            self.again = True
            return
        self.task = asyncio.get_running_loop().create_task(self._build())

    async def _build(self) -> None:
        loop = asyncio.get_running_loop()
        roots = [str(r) for r in self.ls.codebase.roots]
        progress = _Progress(self.ls, "switcheroo: indexing the workspace")
        await progress.begin("reading imports")
        try:
            snap = await loop.run_in_executor(self._pool(), refresh, roots)
            self.ls.codebase.apply_scan(snap)
            self.ls.on_index()
            missing = sorted(p for p, r in snap.files.items() if r.digest not in snap.facts)
            done = len(snap.files) - len(missing)
            progress.report(f"{done}/{len(snap.files)} files", done, len(snap.files))
            for k in range(0, len(missing), BATCH):
                found = await loop.run_in_executor(self._pool(), index.facts_of_files, missing[k:k + BATCH])
                for path, (key, facts) in found.items():
                    record = snap.files.get(path)
                    if record is not None and record.digest == key:
                        snap.facts[key] = facts
                self.ls.codebase.apply_facts(found)
                done += len(missing[k:k + BATCH])
                progress.report(f"{done}/{len(snap.files)} files", done, len(snap.files))
            if missing:
                self.ls.on_facts()
                await loop.run_in_executor(self._pool(), save, snap)
            cached = len(set(snap.files) - set(missing) - snap.read)
            progress.end(f"{len(snap.files)} files indexed, {cached} from the cache")
        except asyncio.CancelledError:
            progress.end("cancelled")
            raise
        except Exception:
            log.exception("indexing the workspace failed")
            progress.end("failed")
        finally:
            if self.again:
                self.again = False
                self.task = loop.create_task(self._build())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.executor is not None:
            # A worker busy reading a file must not hold up the server's exit.
            for process in list(getattr(self.executor, "_processes", {}).values()):
                process.terminate()
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None


class _Progress:
    """Server-initiated work-done progress where the client supports it."""

    def __init__(self, ls, title: str):
        self.ls, self.title = ls, title
        caps = ls.client_capabilities
        self.enabled = bool(caps and caps.window and caps.window.work_done_progress)
        self.token = f"switcheroo-index-{next(_tokens)}"

    async def begin(self, message: str) -> None:
        if not self.enabled:
            return
        try:
            await self.ls.work_done_progress.create_async(self.token)
        except Exception as e:          # a client that refuses: index without a progress bar
            log.warning("work done progress: %s", e)
            self.enabled = False
            return
        self.ls.work_done_progress.begin(self.token, t.WorkDoneProgressBegin(
            title=self.title, message=message, percentage=0, cancellable=False))

    def report(self, message: str, done: int, total: int) -> None:
        if self.enabled:
            self.ls.work_done_progress.report(self.token, t.WorkDoneProgressReport(
                message=message, percentage=int(100 * done / total) if total else 100))

    def end(self, message: str) -> None:
        if self.enabled:
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
