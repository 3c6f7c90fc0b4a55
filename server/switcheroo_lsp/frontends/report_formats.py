"""`check`'s reports for CI: GitHub Actions workflow commands and SARIF 2.1.0.

Both render the rows that `check --format json` prints (one dict per finding), so every format
reports the same findings at the same positions: 1-based lines, 1-based columns in characters.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from .. import __version__
from ..engine import CODES, DOCS_URL

HOMEPAGE = "https://github.com/switcheroo-lsp/switcheroo-lsp"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

# `check` fails the job on every finding it prints, so the information-level ones (the default
# of OPX1xx) are warnings too: a notice would read as "nothing failed". Hints exist only by
# configuration and stay notices.
GITHUB_COMMANDS = {"error": "error", "warning": "warning", "information": "warning", "hint": "notice"}
SARIF_LEVELS = {"error": "error", "warning": "warning", "information": "note", "hint": "note"}

# What each code means, at the length of a rule's full description (the README's "Diagnostic codes").
FULL_DESCRIPTIONS = {
    "OPX101": "A torch.optim optimizer is built. The fix writes the Optax expression that reproduces "
              "torch's trajectory (defaults made explicit, torch's L2 weight decay as "
              "optax.add_decayed_weights before the optimizer, switcheroo_optax transforms where Optax has "
              "no exact built-in) and `<state> = <opt>.init(<params>)` after it.",
    "OPX102": "optimizer.step() on an optimizer traced to a torch construction. Optax is functional: the "
              "fix writes `updates, opt_state = opt.update(grads, opt_state, params)` and "
              "`params = optax.apply_updates(params, updates)`.",
    "OPX103": "optimizer.zero_grad(): jax.grad returns fresh gradients, nothing accumulates, so the "
              "statement is removed (`pass` where a block would be left empty).",
    "OPX104": "A torch.optim.lr_scheduler scheduler. The fix folds the schedule into the optimizer's "
              "learning_rate, counting updates or epochs as torch steps it.",
    "OPX105": "scheduler.step(): removed, because the schedule inside the optimizer advances with every update.",
    "OPX106": "clip_grad_norm_ / clip_grad_value_ before a step: folded into the optimizer as the first "
              "transform of an optax.chain.",
    "OPX107": "A learning rate set or read by hand through param_groups: kept in the optimizer's state "
              "(optax.inject_hyperparams), written and read as opt_state.hyperparams[\"learning_rate\"].",
    "OPX201": "No faithful Optax equivalent: the message says what differs and by how much; an "
              "approximate fix, where there is one, says \"(approximate)\".",
    "OPX202": "Needs a manual rewrite: step(closure), state_dict() / load_state_dict(), param_groups, "
              "add_param_group, or a step whose value is used.",
    "OPX203": "The rewrite needs names (grads, params, the optimizer state, steps_per_epoch) that are not "
              "defined where it goes; the fix is still offered, with a comment naming them.",
}


def render(fmt: str, rows: list[dict], errors: list[str]) -> str:
    """`rows` as `fmt` ("github" or "sarif"), each line ended; `errors` are files that could not be checked."""
    if fmt == "github":
        lines = [*(_github_line(r) for r in rows), *(f"::error::{_escape_data(e)}" for e in errors)]
        return "".join(line + "\n" for line in lines)
    if fmt == "sarif":
        return json.dumps(sarif(rows, errors), ensure_ascii=False, indent=2) + "\n"
    raise ValueError(f"unknown report format {fmt!r}")


# -- GitHub Actions: one workflow command per finding ------------------------------------------

def _escape_data(text: str) -> str:
    # A workflow command ends at the line break; `%` escapes itself.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # Properties are `key=value` pairs separated by `,` and ended by `::`.
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github_line(row: dict) -> str:
    command = GITHUB_COMMANDS[row["severity"]]
    message = row["message"]
    if "cell" in row:
        # A notebook's lines are the cell's, not the .ipynb file's: the annotation goes on the
        # file and the message says where.
        props = {"file": row["path"], "title": row["code"]}
        message = f"cell {row['cell']}, line {row['line']}, column {row['column']}: {message}"
    else:
        props = {"file": row["path"], "line": row["line"], "col": row["column"],
                 "endLine": row["end_line"], "endColumn": row["end_column"], "title": row["code"]}
    joined = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props.items())
    return f"::{command} {joined}::{_escape_data(message)}"


# -- SARIF 2.1.0 -----------------------------------------------------------------------------------

def _rule(code: str) -> dict:
    severity, short = CODES[code]
    full = FULL_DESCRIPTIONS.get(code, short)   # a code added without its text still reports (a test asks for it)
    url = DOCS_URL.format(code=code.lower())
    return {
        "id": code,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": f"{full} {url}", "markdown": f"{full}\n\n[{code} in the switcheroo-lsp README]({url})"},
        "helpUri": url,
        "defaultConfiguration": {"level": SARIF_LEVELS[severity]},
        "properties": {"tags": ["pytorch", "optax", "migration"]},
    }


def _artifact_uri(path: str) -> str:
    p = Path(path)
    if p.is_absolute():
        return p.as_uri()
    # Relative to where `check` ran (the repository root in CI), which %SRCROOT% names below.
    return quote(p.as_posix())


def _fingerprint(uri: str, row: dict, occurrence: int) -> str:
    # Stable while lines move: the file, the code and the message (which names the rewrite), plus
    # which of several identical findings in that file it is.
    key = "\0".join((uri, row["code"], row["message"], str(occurrence)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def sarif(rows: list[dict], errors: list[str]) -> dict:
    rule_ids = list(CODES)
    seen: Counter = Counter()
    results = []
    for row in rows:
        uri = _artifact_uri(row["path"])
        occurrence = seen[uri, row["code"], row["message"]]
        seen[uri, row["code"], row["message"]] += 1
        location: dict = {"artifactLocation": {"uri": uri}}
        if not uri.startswith("file:"):
            location["artifactLocation"]["uriBaseId"] = "%SRCROOT%"
        message = row["message"]
        if "cell" in row:
            # SARIF has no notebook cells: the result is on the file, the message says where.
            message = f"cell {row['cell']}, line {row['line']}, column {row['column']}: {message}"
        else:
            location["region"] = {"startLine": row["line"], "startColumn": row["column"],
                                  "endLine": row["end_line"], "endColumn": row["end_column"]}
        results.append({
            "ruleId": row["code"],
            "ruleIndex": rule_ids.index(row["code"]),
            "level": SARIF_LEVELS[row["severity"]],
            "message": {"text": message},
            "locations": [{"physicalLocation": location}],
            "partialFingerprints": {"switcheroo/v1": _fingerprint(uri, row, occurrence)},
            "properties": {"fixable": row["fixable"]},
        })
    run = {
        "tool": {"driver": {
            "name": "switcheroo-lsp",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": HOMEPAGE,
            "rules": [_rule(code) for code in rule_ids],
        }},
        # Columns count characters (code points), as in every other output of `check`.
        "columnKind": "unicodeCodePoints",
        "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
        "invocations": [{
            # Files that could not be read or parsed are skipped, not a failure of the run.
            "executionSuccessful": True,
            "toolExecutionNotifications": [{"level": "error", "message": {"text": e}} for e in errors],
        }],
        "results": results,
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
