"""A steady load on a real server, for a sampling profiler to attach to.

    .venv/bin/python bench/session.py edit &      # prints PID <server pid>, runs 40 s
    .venv/bin/py-spy record -p <server pid> -d 20 -r 250 -f raw -o edit.raw
    .venv/bin/python bench/fold.py edit.raw _run_once    # the event loop thread only

`edit` types and deletes one character in the middle of a 5k-line generated file, waiting for
each version's diagnostics; `actions` asks for the code actions and the hover of every 7th
diagnostic, round after round.
"""

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "robustness"))

from generate import training_file  # noqa: E402
from rpc import Rpc  # noqa: E402


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "edit"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 40
    rpc = Rpc()
    rpc.initialize({"textDocument": {"publishDiagnostics": {"versionSupport": True}}}, {"debounce_ms": 0})
    print("PID", rpc.pid, flush=True)
    time.sleep(3)          # time to attach
    text = training_file(5000)
    uri = "file:///bench/session.py"
    rpc.open(uri, text)
    diagnostics = rpc.published(uri, 1, timeout=300).body["params"]["diagnostics"]
    middle = len(text.split("\n")) // 2
    version, end = 1, time.time() + seconds
    while time.time() < end:
        if mode == "edit":
            version += 1
            mark = rpc.mark()
            at = {"line": middle, "character": 0}
            change = ({"range": {"start": at, "end": at}, "text": "#"} if version % 2 == 0 else
                      {"range": {"start": at, "end": {"line": middle, "character": 1}}, "text": ""})
            rpc.change(uri, version, [change])
            rpc.published(uri, version, since=mark, timeout=300)
        else:
            for d in diagnostics[::7]:
                rpc.call("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": d["range"],
                                                     "context": {"diagnostics": [d]}})
                rpc.call("textDocument/hover", {"textDocument": {"uri": uri}, "position": d["range"]["start"]})
    rpc.shutdown()


if __name__ == "__main__":
    main()
