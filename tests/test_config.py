"""Settings parsing, merging and .gitignore-style excludes."""

import pytest

from switcheroo_lsp.frontends.config import Settings, matches_exclude


@pytest.mark.parametrize("path, patterns, excluded", [
    ("build/gen.py", ("build/",), True),
    ("src/build/gen.py", ("build/",), True),
    ("build.py", ("build/",), False),
    ("skip_me.py", ("skip_*.py",), True),
    ("pkg/skip_me.py", ("skip_*.py",), True),
    ("pkg/keep.py", ("skip_*.py",), False),
    ("vendor/lib/a.py", ("vendor/lib",), True),
    ("src/vendor/lib/a.py", ("/vendor/lib",), False),
    ("a/b/c/d.py", ("a/**/d.py",), True),
    ("notes.py", ("# comment", ""), False),
])
def test_excludes(path, patterns, excluded):
    assert matches_exclude(path, patterns) is excluded


def test_select_ignore_prefixes():
    s = Settings.from_mapping({"select": ["OPX1"], "ignore": ["OPX103"]})
    assert s.enabled("OPX101") and not s.enabled("OPX103") and not s.enabled("OPX201")


def test_severity_longest_prefix_wins():
    s = Settings.from_mapping({"severity": {"OPX1": "hint", "OPX101": "Error"}})
    assert s.severity_of("OPX101", "information") == "error"
    assert s.severity_of("OPX102", "information") == "hint"
    assert s.severity_of("OPX201", "warning") == "warning"


def test_invalid_values_are_reported_not_raised():
    s = Settings.from_mapping({"select": 3, "severity": {"OPX101": "loud"}, "ignore": ["NOPE9"]})
    assert s.select is None
    assert len(s.problems) == 3


def test_nested_section_and_merge_precedence():
    base = Settings.from_mapping({"ignore": ["OPX203"], "severity": {"OPX101": "hint"}})
    editor = Settings.from_mapping({"switcheroo": {"severity": {"OPX102": "error"}}})
    merged = base.merged(editor)
    assert merged.ignore == ("OPX203",)
    assert dict(merged.severity) == {"OPX101": "hint", "OPX102": "error"}


def test_empty_select_means_every_code():
    s = Settings.from_mapping({"select": [], "ignore": []})
    assert s.select is None and s.enabled("OPX101") and s.enabled("OPX203")


def test_target_is_read_validated_and_merged():
    assert Settings().target is None
    project = Settings.from_mapping({"target": "flax-nnx"})
    assert project.target == "flax-nnx" and not project.problems
    # "" is VS Code's "not set": the project's target stands.
    assert project.merged(Settings.from_mapping({"target": ""})).target == "flax-nnx"
    assert project.merged(Settings.from_mapping({"target": "optax"})).target == "optax"
    bad = Settings.from_mapping({"target": "haiku"})
    assert bad.target is None and bad.problems == ("settings: target must be one of optax, flax-nnx, not 'haiku'",)
