"""`check --output-format github|sarif`: the reports CI reads, checked against the JSON rows."""

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urljoin
from urllib.request import url2pathname

import pytest

from switcheroo_lsp import __version__
from switcheroo_lsp.engine import CODES
from switcheroo_lsp.frontends.report_formats import render

TRAIN = """import torch
opt = torch.optim.Adam([], lr=0.01)
for b in data:
    opt.zero_grad()
    loss(b).backward()
    opt.step()
"""


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "switcheroo_lsp", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def rows_of(*args, cwd=None):
    return json.loads(run("check", "--output-format", "json", *args, cwd=cwd).stdout)


# -- GitHub Actions ---------------------------------------------------------------------------

COMMAND = re.compile(r"^::(?P<cmd>error|warning|notice)(?: (?P<props>[^:]*))?::(?P<data>.*)$")


def unescape(text: str) -> str:
    """GitHub's runner decoding of workflow-command escapes."""
    return re.sub(r"%(25|0D|0A|3A|2C)", lambda m: {"25": "%", "0D": "\r", "0A": "\n", "3A": ":", "2C": ","}[m[1]], text)


def parse_command(line: str) -> tuple[str, dict, str]:
    m = COMMAND.match(line)
    assert m, f"not a workflow command: {line!r}"
    props = dict(p.split("=", 1) for p in m["props"].split(",")) if m["props"] else {}
    return m["cmd"], {k: unescape(v) for k, v in props.items()}, unescape(m["data"])


def test_github_annotations_carry_the_json_rows(tmp_path):
    # `,` and `:` in a path must be escaped, or the runner splits the properties there.
    f = tmp_path / "run,1:train.py"
    f.write_text(TRAIN)
    rows = rows_of(str(f))
    r = run("check", "--output-format", "github", str(f))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == len(rows) == 5
    for line, row in zip(lines, rows):
        cmd, props, message = parse_command(line)
        assert props == {"file": str(f), "line": str(row["line"]), "col": str(row["column"]),
                         "endLine": str(row["end_line"]), "endColumn": str(row["end_column"]), "title": row["code"]}
        assert message == row["message"]
        assert cmd == {"information": "warning", "warning": "warning"}[row["severity"]]
    assert lines[0].startswith(f"::warning file={tmp_path}/run%2C1%3Atrain.py,line=2,col=7,endLine=2,")
    assert ",title=OPX101::torch.optim.Adam → optax.adam(learning_rate=0.01)" in lines[0]


def test_github_severity_follows_configuration_and_errors_are_annotated(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.switcheroo]\nseverity = {OPX101 = "error", OPX103 = "hint"}\n')
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "broken.py").write_text("import torch\nopt = torch.optim.SGD([], lr=0.1\n")
    r = run("check", "--format", "github", str(tmp_path))
    commands = {parse_command(l)[1].get("title"): parse_command(l)[0] for l in r.stdout.splitlines()}
    assert commands["OPX101"] == "error" and commands["OPX103"] == "notice" and commands["OPX102"] == "warning"
    errors = [l for l in r.stdout.splitlines() if l.startswith("::error::")]
    assert len(errors) == 1 and "broken.py: syntax error" in errors[0]
    assert r.returncode == 1


def test_github_escapes_data_and_properties():
    row = {"path": "a,b:c.py", "line": 3, "column": 1, "end_line": 4, "end_column": 2, "code": "OPX201",
           "severity": "warning", "message": "100% off\r\nreally: yes, %0A stays text", "fixable": False}
    line = render("github", [row], []).rstrip("\n")
    assert line == ("::warning file=a%2Cb%3Ac.py,line=3,col=1,endLine=4,endColumn=2,title=OPX201"
                    "::100%25 off%0D%0Areally: yes, %250A stays text")
    assert parse_command(line)[2] == row["message"]


def test_notebook_rows_annotate_the_file_and_name_the_cell():
    row = {"path": "nb.ipynb", "cell": 3, "line": 2, "column": 7, "end_line": 2, "end_column": 40,
           "code": "OPX101", "severity": "information", "message": "torch.optim.SGD → optax.sgd(learning_rate=0.1)",
           "fixable": True}
    cmd, props, message = parse_command(render("github", [row], []).rstrip("\n"))
    assert props == {"file": "nb.ipynb", "title": "OPX101"}
    assert message == "cell 3, line 2, column 7: torch.optim.SGD → optax.sgd(learning_rate=0.1)"
    result = json.loads(render("sarif", [row], []))["runs"][0]["results"][0]
    assert "region" not in result["locations"][0]["physicalLocation"]
    assert result["message"]["text"] == message


# -- SARIF 2.1.0 ------------------------------------------------------------------------------

def sarif_of(*args, cwd=None):
    r = run("check", "--output-format", "sarif", *args, cwd=cwd)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def artifact_path(run_: dict, location: dict) -> Path:
    art = location["physicalLocation"]["artifactLocation"]
    uri = art["uri"]
    if "uriBaseId" in art:
        uri = urljoin(run_["originalUriBaseIds"][art["uriBaseId"]]["uri"], uri)
    assert uri.startswith("file:///")
    return Path(url2pathname(unquote(uri[len("file://"):])))


def test_sarif_log_run_and_rules(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    log = sarif_of(str(tmp_path))
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    assert len(log["runs"]) == 1
    run_ = log["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "switcheroo-lsp" and driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    # Every code is a rule, whether or not this run found it, with what GitHub shows of it.
    assert [rule["id"] for rule in driver["rules"]] == list(CODES)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] == CODES[rule["id"]][1]
        assert len(rule["fullDescription"]["text"]) > len(rule["shortDescription"]["text"])
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert rule["helpUri"] == f"https://github.com/switcheroo-lsp/switcheroo-lsp#{rule['id'].lower()}"
        assert rule["defaultConfiguration"]["level"] == {"information": "note", "warning": "warning"}[CODES[rule["id"]][0]]
    assert run_["columnKind"] == "unicodeCodePoints"
    assert run_["invocations"][0]["executionSuccessful"] is True


def test_sarif_results_locate_the_json_rows(tmp_path):
    sub = tmp_path / "my project"
    sub.mkdir()
    (sub / "train.py").write_text('s = "é😀"; import torch\n' + TRAIN)
    (tmp_path / "pyproject.toml").write_text('[tool.switcheroo]\nseverity = {OPX102 = "error"}\n')
    # Relative paths, as CI runs it from the repository's root.
    rows = rows_of("my project", cwd=tmp_path)
    run_ = sarif_of("my project", cwd=tmp_path)["runs"][0]
    results = run_["results"]
    assert len(results) == len(rows) == 5
    rules = run_["tool"]["driver"]["rules"]
    for result, row in zip(results, rows):
        # What GitHub code scanning requires of a result.
        assert result["ruleId"] == row["code"] == rules[result["ruleIndex"]]["id"]
        assert result["message"]["text"] == row["message"]
        assert result["level"] == {"information": "note", "warning": "warning", "error": "error"}[row["severity"]]
        assert len(result["locations"]) == 1
        loc = result["locations"][0]
        art = loc["physicalLocation"]["artifactLocation"]
        assert art == {"uri": "my%20project/train.py", "uriBaseId": "%SRCROOT%"}
        assert artifact_path(run_, loc) == (tmp_path / "my project" / "train.py")
        assert loc["physicalLocation"]["region"] == {
            "startLine": row["line"], "startColumn": row["column"], "endLine": row["end_line"],
            "endColumn": row["end_column"]}
        assert result["partialFingerprints"]["switcheroo/v1"]
        assert result["properties"]["fixable"] == row["fixable"]
    assert {r["level"] for r in results if r["ruleId"] == "OPX102"} == {"error"}
    assert len({r["partialFingerprints"]["switcheroo/v1"] for r in results}) == len(results)


def test_sarif_fingerprints_survive_moved_lines_and_tell_twins_apart(tmp_path):
    twice = TRAIN + "for b in data:\n    opt.zero_grad()\n    opt.step()\n"
    f = tmp_path / "train.py"
    f.write_text(twice)
    before = [(r["ruleId"], r["partialFingerprints"]["switcheroo/v1"]) for r in sarif_of("train.py", cwd=tmp_path)["runs"][0]["results"]]
    f.write_text("# a new first line\n\n" + twice)
    after = [(r["ruleId"], r["partialFingerprints"]["switcheroo/v1"]) for r in sarif_of("train.py", cwd=tmp_path)["runs"][0]["results"]]
    assert before == after
    assert len(set(before)) == len(before), "two identical zero_grad() findings need distinct fingerprints"


def test_sarif_absolute_paths_and_unreadable_files(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "broken.py").write_text("import torch\nopt = torch.optim.SGD([], lr=0.1\n")
    run_ = sarif_of(str(tmp_path))["runs"][0]
    assert {artifact_path(run_, r["locations"][0]) for r in run_["results"]} == {tmp_path / "train.py"}
    notes = run_["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == 1 and notes[0]["level"] == "error" and "broken.py: syntax error" in notes[0]["message"]["text"]


def test_clean_tree_gives_an_empty_run_and_exit_0(tmp_path):
    (tmp_path / "ok.py").write_text("import torch\nx = torch.zeros(3)\n")
    r = run("check", "--output-format", "sarif", str(tmp_path))
    assert r.returncode == 0
    assert json.loads(r.stdout)["runs"][0]["results"] == []
    g = run("check", "--output-format", "github", str(tmp_path))
    assert (g.returncode, g.stdout) == (0, "")


@pytest.mark.parametrize("flag", ["--format", "--output-format"])
def test_json_under_either_spelling(tmp_path, flag):
    (tmp_path / "train.py").write_text(TRAIN)
    r = run("check", flag, "json", str(tmp_path))
    assert [row["code"] for row in json.loads(r.stdout)] == ["OPX101", "OPX203", "OPX103", "OPX102", "OPX203"]
