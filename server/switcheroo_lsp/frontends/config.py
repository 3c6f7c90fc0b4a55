"""Settings: `select`, `ignore`, `severity`, `exclude`, `target`.

Sources, later ones overriding the keys they set: `[tool.switcheroo]` in the nearest
pyproject.toml, then the editor's `initializationOptions`, then `workspace/configuration`
(section `switcheroo`). The CLI reads only pyproject.toml.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..engine import CODES, SEVERITIES
from ..targets import TARGETS


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] | None = None      # code prefixes; None = every code
    ignore: tuple[str, ...] = ()
    severity: tuple[tuple[str, str], ...] = ()
    exclude: tuple[str, ...] = ()
    target: str | None = None                  # what the rewrites write (TARGETS); None = optax
    problems: tuple[str, ...] = field(default=(), compare=False)   # what was invalid and ignored

    @classmethod
    def from_mapping(cls, data: Any, origin: str = "settings") -> "Settings":
        """Read a settings mapping; invalid entries are reported in `problems`, never raised."""
        if not isinstance(data, dict):
            return cls()
        if isinstance(data.get("switcheroo"), dict):
            data = data["switcheroo"]
        problems: list[str] = []
        values: dict[str, Any] = {}
        for key in ("select", "ignore", "exclude"):
            if key in data and data[key] is not None:
                items = data[key]
                if isinstance(items, str):
                    items = [items]
                if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                    problems.append(f"{origin}: {key} must be a list of strings")
                    continue
                values[key] = tuple(i.strip() for i in items if i.strip())
        if values.get("select") == ():
            del values["select"]   # an empty list (VS Code's default) means "not set": every code
        sev = data.get("severity")
        if sev is not None:
            if not isinstance(sev, dict):
                problems.append(f"{origin}: severity must map codes to {'|'.join(SEVERITIES)}")
            else:
                pairs = []
                for code, level in sev.items():
                    if not isinstance(level, str) or level.lower() not in SEVERITIES:
                        problems.append(f"{origin}: severity of {code} must be one of {', '.join(SEVERITIES)}")
                    else:
                        pairs.append((str(code).upper(), level.lower()))
                values["severity"] = tuple(pairs)
        target = data.get("target")
        if target is not None and target != "":        # "" (VS Code's "not set") leaves it to others
            if target in TARGETS:
                values["target"] = target
            else:
                problems.append(f"{origin}: target must be one of {', '.join(TARGETS)}, not {target!r}")
        for key in ("select", "ignore"):
            for code in values.get(key, ()):
                if not any(c.startswith(code.upper()) for c in CODES):
                    problems.append(f"{origin}: {key} has {code!r}, which matches no switcheroo code")
        return cls(**values, problems=tuple(problems))

    def merged(self, other: "Settings") -> "Settings":
        """`other` wins for the keys it sets."""
        changes = {}
        if other.select is not None:
            changes["select"] = other.select
        for key in ("ignore", "exclude"):
            if getattr(other, key):
                changes[key] = getattr(other, key)
        if other.severity:
            changes["severity"] = tuple(dict(self.severity + other.severity).items())
        if other.target is not None:
            changes["target"] = other.target
        changes["problems"] = self.problems + other.problems
        return replace(self, **changes)

    def enabled(self, code: str) -> bool:
        if self.select is not None and not any(code.startswith(p.upper()) for p in self.select):
            return False
        return not any(code.startswith(p.upper()) for p in self.ignore)

    def severity_of(self, code: str, default: str) -> str:
        best, best_len = default, -1
        for prefix, level in self.severity:
            if code.startswith(prefix) and len(prefix) > best_len:
                best, best_len = level, len(prefix)
        return best

    def excluded(self, path: Path, root: Path | None) -> bool:
        if not self.exclude:
            return False
        try:
            rel = path.resolve().relative_to(root.resolve()) if root else path
        except ValueError:
            rel = path
        return matches_exclude(PurePosixPath(*rel.parts).as_posix(), self.exclude)


def matches_exclude(rel: str, patterns: tuple[str, ...]) -> bool:
    """.gitignore-style: `name` matches any path component, `dir/` a directory, a pattern with
    a slash is anchored at the project root, and `*` / `**` / `?` glob."""
    parts = rel.split("/")
    for raw in patterns:
        pat = raw.strip()
        if not pat or pat.startswith("#"):
            continue
        dir_only = pat.endswith("/")
        pat = pat.rstrip("/")
        anchored = "/" in pat
        pat = pat.lstrip("/")
        if anchored:
            # The path itself or any of its parent directories.
            candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + (0 if dir_only else 1))]
            if any(fnmatch.fnmatchcase(c, pat) or fnmatch.fnmatchcase(c, pat.replace("**/", "")) for c in candidates):
                return True
        else:
            comps = parts[:-1] if dir_only else parts
            if any(fnmatch.fnmatchcase(c, pat) for c in comps):
                return True
    return False


def find_pyproject(start: Path) -> Path | None:
    start = start.resolve()
    for d in [start] + list(start.parents) if start.is_dir() else list(start.parents):
        candidate = d / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_pyproject(start: Path) -> tuple[Settings, Path | None]:
    """Settings from the nearest pyproject.toml at or above `start`, and its folder."""
    found = find_pyproject(start)
    if found is None:
        return Settings(), None
    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return Settings(problems=(f"{found}: cannot read: {e}",)), found.parent
    section = data.get("tool", {}).get("switcheroo", {})
    return Settings.from_mapping(section, origin=f"{found} [tool.switcheroo]"), found.parent


def visible(findings: list, settings: Settings) -> list:
    """The findings `settings` lets through, with their configured severity."""
    out = []
    for f in findings:
        if settings.enabled(f.code):
            f.severity = settings.severity_of(f.code, CODES[f.code][0])
            out.append(f)
    return out
