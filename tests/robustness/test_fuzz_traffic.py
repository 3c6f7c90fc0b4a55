"""Random LSP traffic against the real server (a subprocess over stdio), as hypothesis draws it.

Traffic: incremental edits with random ranges (in range, past the end of a line, past the end
of the document), text that breaks the syntax mid-typing, several changes in one message,
typing bursts, full replacements, open / close / reopen / open again without closing,
requests (hover, code actions, pulls) on current, stale and unknown documents, code actions
carrying diagnostics of an older version, applying a code action's edit as an editor does,
cancelled requests, malformed JSON-RPC (a body that is not JSON, params of the wrong types,
changes for documents never opened), unknown methods and notifications.

After each example's traffic: the server is alive, has answered every request (with an error
where the request was bad), never published an older version after a newer one, and its
diagnostics equal a fresh `analyze()` of the text the client believes the document has (the
client applies every change itself, from the LSP spec: lsp_model.py). While the current text
does not parse, the server shows the findings of an earlier version that did (or none).

One server per client profile for the module: push with UTF-16, pull with UTF-8, push with
UTF-32 and a debounce (so that pending analyses are really cancelled).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from fuzz_settings import fuzz
from lsp_model import apply_change, apply_text_edits, expected_diagnostics, lines_of, summarize, units
from programs import programs
from rpc import Rpc
from switcheroo_lsp.engine import analyze
from switcheroo_lsp.engine import apply

PROFILES = {
    "push-utf16": ({"textDocument": {"publishDiagnostics": {"versionSupport": True}},
                    "workspace": {"workspaceEdit": {"documentChanges": True}}}, {"debounce_ms": 0}),
    "pull-utf8": ({"general": {"positionEncodings": ["utf-8"]}, "textDocument": {"diagnostic": {}}},
                  {"debounce_ms": 0}),
    "push-utf32-debounced": ({"general": {"positionEncodings": ["utf-32"]},
                              "textDocument": {"publishDiagnostics": {"versionSupport": True}}},
                             {"debounce_ms": 15}),
}
TIMEOUT = 60.0
_uris = itertools.count()

SEED = '''import torch
import torch.optim as optim

def train(model, loader, params, grads):
    opt = optim.Adam(model.parameters(), lr=0.01)
    for x, y in loader:
        opt.zero_grad()
        loss = model(x).sum()  # é😀
        loss.backward()
        opt.step()
    return params
'''
SNIPPETS = ["opt.step()", "opt.zero_grad()", "\n", "\r\n", "\r", "    ", "\t", "(", ")", ":", "for x in y:\n    ",
            "if c: opt.step()\n", "torch.optim.SGD(model.parameters(), lr=0.1)", "sched = torch.optim.lr_scheduler"
            ".StepLR(opt, 3)\n", "# noqa\n", "é", "😀", "日本", "\u2028", "\x0c", "\x85", "'", '"""', "\\\n", "", "x",
            "import torch\n", "del opt\n", "opt = None\n", "; opt.step()"]


@dataclass
class Doc:
    uri: str
    text: str
    version: int = 1
    open: bool = True
    good: list[str] = field(default_factory=list)      # texts since the last open that parsed


@pytest.fixture(scope="module", params=sorted(PROFILES))
def server(request):
    caps, options = PROFILES[request.param]
    rpc = Rpc()
    result = rpc.initialize(caps, options)
    rpc.profile = request.param
    rpc.encoding = result["capabilities"].get("positionEncoding", "utf-16")
    rpc.pulls = "diagnostic" in caps.get("textDocument", {})
    rpc.versioned = bool(caps.get("workspace", {}).get("workspaceEdit", {}).get("documentChanges"))
    assert rpc.encoding == {"push-utf16": "utf-16", "pull-utf8": "utf-8",
                            "push-utf32-debounced": "utf-32"}[request.param]
    yield rpc
    assert rpc.alive(), f"the server exited: {rpc.stderr[-20:]}"
    rpc.shutdown()


# -- the traffic --------------------------------------------------------------------------------------

raw = st.integers(0, 10 ** 6)
inserted = st.one_of(st.sampled_from(SNIPPETS),
                     st.text(alphabet=st.sampled_from("abc_ ().:=\n\r\t#'\"é😀\u2028\x0c"), max_size=12))
edit = st.tuples(st.just("edit"), st.integers(0, 1), raw, raw, raw, raw, st.integers(0, 7), inserted)
op = st.one_of(
    edit, edit, edit,
    st.tuples(st.just("multi"), st.integers(0, 1), st.lists(st.tuples(raw, raw, raw, raw, st.integers(0, 7), inserted),
                                                          min_size=2, max_size=4)),
    st.tuples(st.just("burst"), st.integers(0, 1), st.integers(2, 8), raw),
    st.tuples(st.just("full"), st.integers(0, 1), st.one_of(st.sampled_from(["", SEED, SEED.replace("\n", "\r\n"),
                                                                             "def f(:\n"]),
                                                            programs().map(lambda p: p.text))),
    st.tuples(st.just("close"), st.integers(0, 1)),
    st.tuples(st.just("reopen"), st.integers(0, 1)),
    st.tuples(st.just("open_again"), st.integers(0, 1)),
    st.tuples(st.just("hover"), st.integers(0, 2), raw, raw),
    st.tuples(st.just("action"), st.integers(0, 2), raw, raw, st.booleans()),
    st.tuples(st.just("apply_action"), st.integers(0, 1), raw),
    st.tuples(st.just("pull"), st.integers(0, 2)),
    st.tuples(st.just("cancel"), st.integers(0, 1), raw, raw),
    st.tuples(st.just("garbage"), st.integers(0, 7)),
    st.tuples(st.just("save"), st.integers(0, 1)),
)
traffic = st.lists(op, min_size=1, max_size=20)


class Session:
    """Drives one example's traffic and keeps the client's side of every document."""

    def __init__(self, rpc: Rpc, uri_style: int = 0):
        self.rpc = rpc
        self.enc = rpc.encoding
        self.uri_style = uri_style
        self.docs = [self._open(SEED), self._open(SEED.replace("\n", "\r\n"))]
        self.pending: list = []           # request ids awaiting an answer
        self.stale_diagnostics: dict[str, list] = {}

    # -- documents --------------------------------------------------------------------------------
    def _open(self, text: str) -> Doc:
        n = next(_uris)
        uri = [f"file:///fuzz/doc_{n}.py", f"file:///fuzz/my%20doc_{n}.py", f"file:///fuzz/%C3%A9t%C3%A9_{n}.py",
               f"untitled:Untitled-{n}", f"file:///fuzz/doc_{n}.pyi"][self.uri_style]
        doc = Doc(uri, text)
        self.rpc.open(doc.uri, text, doc.version)
        self._remember(doc)
        return doc

    def _remember(self, doc: Doc) -> None:
        if expected_diagnostics(doc.text, self.enc) is not None:
            doc.good.append(doc.text)

    def position(self, doc: Doc, a: int, b: int, wild: int = 9) -> dict:
        """A position on a character boundary; sometimes past the end of its line or of the
        document (what the spec says to clamp)."""
        lines = lines_of(doc.text)
        if wild == 0:
            return {"line": len(lines) + a % 4, "character": b % 7}
        line = a % len(lines)
        content = lines[line]
        if wild in (1, 2):
            # past the end of the line: by one (where a splitter that keeps line breaks lands
            # between or after them), or by more
            return {"line": line, "character": units(content, self.enc) + (1 if wild == 1 else 1 + b % 5)}
        return {"line": line, "character": units(content[:b % (len(content) + 1)], self.enc)}

    def range(self, doc: Doc, a, b, c, d, wild) -> dict:
        start = self.position(doc, a, b, wild)
        end = self.position(doc, a + c % 3, d, wild if wild < 3 else 9) if c % 4 else dict(start)
        if (end["line"], end["character"]) < (start["line"], start["character"]):
            start, end = end, start
        return {"start": start, "end": end}

    def change(self, doc: Doc, changes: list[dict]) -> None:
        if not doc.open:
            self.reopen(doc)
        doc.version += 1
        for ch in changes:
            doc.text = apply_change(doc.text, ch, self.enc)
        self.rpc.change(doc.uri, doc.version, changes)
        self._remember(doc)

    def reopen(self, doc: Doc) -> None:
        if doc.open:
            self.rpc.close(doc.uri)
        doc.version += 1
        doc.open, doc.good = True, []
        self.rpc.open(doc.uri, doc.text, doc.version)
        self._remember(doc)

    # -- requests ---------------------------------------------------------------------------------
    def request(self, method: str, params, expect_error: bool = False, check=None) -> None:
        self.pending.append((self.rpc.request(method, params), method, expect_error, check))

    def uri_for(self, which: int) -> str:
        return self.docs[which].uri if which < 2 else "file:///fuzz/never_opened.py"

    def check_action_result(self, doc: Doc, result) -> None:
        """Edits only the document asked about, for its current version, in range."""
        for action in result or []:
            edit = action.get("edit")
            if not edit:
                continue
            if self.rpc.versioned:
                assert "changes" not in edit or not edit["changes"]
                assert [c["textDocument"]["uri"] for c in edit["documentChanges"]] == [doc.uri], edit
            else:
                assert list(edit.get("changes", {})) == [doc.uri], edit

    def run(self, step) -> None:
        kind, which = step[0], step[1]
        doc = self.docs[which] if which < 2 else None
        rpc = self.rpc
        if kind == "edit":
            _, _, a, b, c, d, wild, text = step
            self.change(doc, [{"range": self.range(doc, a, b, c, d, wild), "text": text}])
        elif kind == "multi":
            changes = []
            for a, b, c, d, wild, text in step[2]:
                # each change's positions refer to the text after the previous change
                probe = Doc(doc.uri, doc.text)
                for ch in changes:
                    probe.text = apply_change(probe.text, ch, self.enc)
                changes.append({"range": self.range(probe, a, b, c, d, wild), "text": text})
            self.change(doc, changes)
        elif kind == "burst":
            _, _, count, a = step
            for k in range(count):
                self.change(doc, [{"range": self.range(doc, a, a + k, 0, a + k, 9), "text": "xé😀("[k % 4]}])
        elif kind == "full":
            self.change(doc, [{"text": step[2]}])
        elif kind == "close":
            if doc.open:
                rpc.close(doc.uri)
                doc.open = False
            else:
                rpc.close(doc.uri)        # closing a closed document: ignored
        elif kind == "reopen":
            self.reopen(doc)
        elif kind == "open_again":     # didOpen for a document that is already open
            doc.version += 1
            doc.open = True
            rpc.open(doc.uri, doc.text, doc.version)
            self._remember(doc)
        elif kind == "hover":
            _, w, a, b = step
            target = doc or self.docs[0]
            self.request("textDocument/hover", {"textDocument": {"uri": self.uri_for(w)},
                                                "position": self.position(target, a, b, b % 4)})
        elif kind == "action":
            _, w, a, b, stale = step
            target = doc or self.docs[0]
            diagnostics = self.stale_diagnostics.get(target.uri, []) if stale else []
            params = {"textDocument": {"uri": self.uri_for(w)}, "range": self.range(target, a, b, 1, b + 5, b % 4),
                      "context": {"diagnostics": diagnostics[:3]}}
            current = doc if doc is not None and doc.open else None
            self.request("textDocument/codeAction", params,
                         check=(lambda r, d=current: self.check_action_result(d, r)) if current else None)
        elif kind == "apply_action":
            self.apply_action(doc, step[2])
        elif kind == "pull":
            self.request("textDocument/diagnostic", {"textDocument": {"uri": self.uri_for(which)}})
        elif kind == "cancel":
            _, _, a, b = step
            msg_id = rpc.request("textDocument/hover", {"textDocument": {"uri": doc.uri},
                                                        "position": self.position(doc, a, b)})
            rpc.notify("$/cancelRequest", {"id": msg_id})
            self.pending.append((msg_id, "cancelled hover", None, None))
        elif kind == "garbage":
            self.garbage(step[1], doc or self.docs[0])
        elif kind == "save":
            rpc.notify("textDocument/didSave", {"textDocument": {"uri": doc.uri}})

    def apply_action(self, doc: Doc, pick: int) -> None:
        """Ask for the actions at a diagnostic of the current version and apply one, as an editor."""
        if not doc.open:
            return
        self.settle()
        diagnostics = self.current_diagnostics(doc)
        if not diagnostics:
            return
        d = diagnostics[pick % len(diagnostics)]
        actions = self.rpc.call("textDocument/codeAction", {"textDocument": {"uri": doc.uri}, "range": d["range"],
                                                            "context": {"diagnostics": [d]}}, TIMEOUT) or []
        self.check_action_result(doc, actions)
        with_edits = [a for a in actions if a.get("edit")]
        if not with_edits:
            return
        edit = with_edits[pick % len(with_edits)]["edit"]
        if self.rpc.versioned:
            change = edit["documentChanges"][0]
            assert change["textDocument"]["version"] == doc.version
            edits = change["edits"]
        else:
            edits = edit["changes"][doc.uri]
        new_text = apply_text_edits(doc.text, edits, self.enc)
        # An editor sends the applied edits back as incremental changes, last first.
        ordered = sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]),
                         reverse=True)
        self.change(doc, [{"range": e["range"], "text": e["newText"]} for e in ordered])
        assert doc.text == new_text

    def garbage(self, kind: int, doc: Doc) -> None:
        rpc = self.rpc
        if kind == 0:
            rpc.send_body(b'{"jsonrpc": "2.0", "id": 424242, "method": "textDocument/hover", "params": {"text')
        elif kind == 1:
            self.request("textDocument/hover", {"textDocument": {"uri": 5}, "position": "here"}, expect_error=True)
        elif kind == 2:
            self.request("textDocument/codeAction", {"textDocument": {"uri": doc.uri}, "range": None,
                                                     "context": {"diagnostics": "none"}}, expect_error=True)
        elif kind == 3:
            self.request("switcheroo/doesNotExist", {"x": 1}, expect_error=True)
        elif kind == 4:
            rpc.notify("switcheroo/unknownNotification", {"x": [1, 2]})
            rpc.notify("$/unknownNotification", None)
        elif kind == 5:      # changes to a document never opened, and malformed change params
            rpc.change("file:///fuzz/never_opened.py", 7, [{"text": "import torch\n"}])
            rpc.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri}, "contentChanges": "oops"})
        elif kind == 6:
            self.request("textDocument/hover", {"textDocument": {"uri": doc.uri},
                                                "position": {"line": -1, "character": -3}}, expect_error=True)
        else:
            rpc.send_body(b"[]")          # an empty batch: not a message at all
            rpc.send_body(b'"just a string"')

    # -- settling and checking -----------------------------------------------------------------
    def answer_everything(self) -> None:
        for msg_id, method, expect_error, check in self.pending:
            answer = self.rpc.response(msg_id, TIMEOUT)
            if expect_error:
                assert "error" in answer, f"{method}: expected an error, got {answer}"
            elif method == "cancelled hover":
                assert "result" in answer or answer["error"]["code"] == -32800, answer
            else:
                assert "error" not in answer, f"{method}: {answer['error']}"
                if check is not None:
                    check(answer.get("result"))
        self.pending.clear()

    def settle(self) -> None:
        self.answer_everything()
        for doc in self.docs:
            if doc.open and not self.rpc.pulls:
                self.rpc.published(doc.uri, doc.version, timeout=TIMEOUT)
        self.rpc.call("textDocument/hover", {"textDocument": {"uri": "untitled:barrier"},
                                             "position": {"line": 0, "character": 0}}, TIMEOUT)

    def current_diagnostics(self, doc: Doc) -> list[dict]:
        if self.rpc.pulls:
            report = self.rpc.call("textDocument/diagnostic", {"textDocument": {"uri": doc.uri}}, TIMEOUT)
            assert report["kind"] == "full"
            return report["items"]
        mine = self.rpc.all_published(doc.uri)
        assert mine, "nothing published"
        latest = mine[-1]
        assert latest.get("version") == doc.version, \
            f"the latest diagnostics are for version {latest.get('version')}, the document is at {doc.version}"
        self.stale_diagnostics[doc.uri] = latest["diagnostics"]
        return latest["diagnostics"]

    def check(self) -> None:
        self.settle()
        assert self.rpc.alive(), f"the server exited: {self.rpc.stderr[-20:]}"
        for doc in self.docs:
            if not doc.open:
                continue
            if not self.rpc.pulls:
                versions = [p.get("version") for p in self.rpc.all_published(doc.uri) if p.get("version") is not None]
                assert versions == sorted(versions), f"an older version was published after a newer one: {versions}"
            got = summarize(self.current_diagnostics(doc))
            expected = expected_diagnostics(doc.text, self.enc)
            if expected is not None:
                assert got == expected, f"diagnostics differ from a fresh analysis of\n{doc.text!r}"
                self.check_fix_all(doc)
            else:
                allowed = [[]] + [expected_diagnostics(g, self.enc) for g in doc.good]
                assert got in allowed, (f"while the text does not parse, the diagnostics must be those of an "
                                        f"earlier version that did (or none)\n{doc.text!r}")

    def check_fix_all(self, doc: Doc) -> None:
        """The server's fix-all, applied to the client's text, gives what the core's fix-all of that
        text gives: its whole-line edits carry the server's copy of those lines."""
        analysis = analyze(doc.text)
        expected = apply(doc.text, analysis.fix_all({f.key for f in analysis.findings if f.fixable}))
        actions = self.rpc.call("textDocument/codeAction", {
            "textDocument": {"uri": doc.uri}, "range": {"start": {"line": 0, "character": 0},
                                                        "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": [], "only": ["source.fixAll.switcheroo"]}}, TIMEOUT) or []
        self.check_action_result(doc, actions)
        if expected == doc.text:
            assert not [a for a in actions if a.get("edit")], "a fix-all where the core has nothing to fix"
            return
        assert len(actions) == 1, actions
        edit = actions[0]["edit"]
        edits = edit["documentChanges"][0]["edits"] if self.rpc.versioned else edit["changes"][doc.uri]
        assert apply_text_edits(doc.text, edits, self.enc) == expected, \
            f"the server's fix-all was computed on another text than\n{doc.text!r}"

    def close_all(self) -> None:
        for doc in self.docs:
            if doc.open:
                self.rpc.close(doc.uri)


@fuzz(150)
@given(steps=traffic, uri_style=st.integers(0, 4))
def test_random_traffic_keeps_the_server_alive_answering_and_in_sync(server: Rpc, steps, uri_style):
    session = Session(server, uri_style)
    try:
        for step in steps:
            note(f"{step!r}")
            session.run(step)
        session.check()
    finally:
        session.pending.clear()
        session.close_all()
