"""A tiny JSON-RPC client that drives the real server over stdio, byte for byte.

Written for the robustness tests and the benchmarks: it can send what no well-behaved client
library would (a broken JSON body, params of the wrong type, a cancel for a request already
answered) and it time-stamps every message it reads. It answers the server's own requests
(configuration, capability registration, progress, refresh) so the server never waits on us.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

SERVER = [sys.executable, "-m", "switcheroo_lsp", "serve"]


class ServerGone(AssertionError):
    pass


@dataclass
class Message:
    body: dict
    at: float          # time.perf_counter() when it was read


@dataclass
class Rpc:
    command: list[str] = field(default_factory=lambda: list(SERVER))
    env: dict | None = None
    cwd: str | None = None

    def __post_init__(self):
        env = {**os.environ, **(self.env or {})}
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=self.cwd)
        self.messages: list[Message] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._eof = False
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- reading ------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        out = self.proc.stdout
        try:
            while True:
                length = None
                while True:
                    line = out.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    continue
                data = out.read(length)
                at = time.perf_counter()
                body = json.loads(data)
                if "method" in body and "id" in body:
                    self._answer_server_request(body)
                with self._cond:
                    self.messages.append(Message(body, at))
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _read_stderr(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.stderr.append(line)
                self._cond.notify_all()

    def _answer_server_request(self, body: dict) -> None:
        method = body["method"]
        if method == "workspace/configuration":
            result: Any = [None for _ in body.get("params", {}).get("items", [])]
        else:
            result = None
        self.send({"jsonrpc": "2.0", "id": body["id"], "result": result})

    # -- writing ------------------------------------------------------------------------------
    def send_bytes(self, data: bytes) -> None:
        with self._write_lock:
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                raise ServerGone(f"server stdin closed: {e}; stderr: {self.stderr[-20:]}") from e

    def send_body(self, body: bytes) -> None:
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send(self, message: dict) -> None:
        self.send_body(json.dumps(message, ensure_ascii=False).encode("utf-8"))

    def notify(self, method: str, params: Any = None) -> None:
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def request(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        """Send a request; returns its id (await it with `response`)."""
        msg_id = next(self._ids) if msg_id is None else msg_id
        msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return msg_id

    # -- waiting ------------------------------------------------------------------------------
    def wait(self, match: Callable[[dict], bool], timeout: float = 30.0, since: int = 0) -> Message:
        """The first message (from index `since`) that matches."""
        deadline = time.monotonic() + timeout
        with self._cond:
            scanned = since
            while True:
                for i in range(scanned, len(self.messages)):
                    if match(self.messages[i].body):
                        return self.messages[i]
                scanned = len(self.messages)
                if self._eof:
                    raise ServerGone(f"server exited (rc={self.proc.poll()}); stderr: {self.stderr[-20:]}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching message within {timeout}s")
                self._cond.wait(remaining)

    def response(self, msg_id: Any, timeout: float = 30.0) -> dict:
        return self.wait(lambda b: "method" not in b and b.get("id") == msg_id, timeout).body

    def call(self, method: str, params: Any = None, timeout: float = 30.0) -> Any:
        """Request and wait; an error answer raises RpcError."""
        answer = self.response(self.request(method, params), timeout)
        if "error" in answer:
            raise RpcError(answer["error"])
        return answer.get("result")

    def published(self, uri: str, version: int | None = None, since: int = 0, timeout: float = 30.0,
                  findings: bool = False) -> Message:
        """The first publish for `uri` (at `version`); with `findings`, the first with any: in a
        workspace, the first publish may come before the index and withhold them all."""
        def match(b):
            if b.get("method") != "textDocument/publishDiagnostics":
                return False
            p = b["params"]
            return p["uri"] == uri and (version is None or p.get("version") == version) and (
                not findings or bool(p["diagnostics"]))
        return self.wait(match, timeout, since)

    def all_published(self, uri: str, since: int = 0) -> list[dict]:
        with self._cond:
            return [m.body["params"] for m in self.messages[since:]
                    if m.body.get("method") == "textDocument/publishDiagnostics"
                    and m.body["params"]["uri"] == uri]

    def mark(self) -> int:
        with self._cond:
            return len(self.messages)

    # -- session --------------------------------------------------------------------------------
    def initialize(self, capabilities: dict | None = None, options: dict | None = None,
                   root_uri: str | None = None) -> dict:
        result = self.call("initialize", {
            "processId": os.getpid(), "rootUri": root_uri, "capabilities": capabilities or {},
            "initializationOptions": options})
        self.notify("initialized", {})
        return result

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": version, "text": text}})

    def change(self, uri: str, version: int, changes: list[dict]) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": changes})

    def close(self, uri: str) -> None:
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    def alive(self) -> bool:
        return self.proc.poll() is None

    def shutdown(self, timeout: float = 10.0) -> int | None:
        try:
            if self.alive():
                self.call("shutdown", None, timeout)
                self.notify("exit")
                return self.proc.wait(timeout)
        except (ServerGone, TimeoutError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass
        return self.proc.returncode


class RpcError(Exception):
    def __init__(self, error: dict):
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error
        self.code = error.get("code")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_ns(pid: int) -> int:
    """CPU time the process's live threads have used so far (ns), from /proc/<pid>/task/*/schedstat."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total
