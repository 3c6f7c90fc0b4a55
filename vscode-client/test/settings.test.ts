import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Environment,
  buildServerOptions,
  commandFromSettings,
  expandVariables,
  findOnPath,
  formatCommand,
  resolveServerCommand,
  startErrorMessage,
} from "../src/settings";

// A fake file system: only the listed files "exist and are executable".
function env(files: string[], overrides: Partial<Environment> = {}): Environment {
  const set = new Set(files);
  return {
    workspaceFolder: "/ws",
    homeDir: "/home/u",
    envPath: "/usr/local/bin:/usr/bin",
    platform: "linux",
    isExecutable: (f) => set.has(f),
    ...overrides,
  };
}

describe("resolveServerCommand", () => {
  it("prefers switcheroo.path over everything else, taking it verbatim", () => {
    const r = resolveServerCommand(
      { path: ["/venv/bin/switcheroo-lsp", "serve", "--log-level", "debug"], interpreter: ["/usr/bin/python3"] },
      env(["/venv/bin/switcheroo-lsp", "/usr/bin/switcheroo-lsp"]),
      { interpreter: "/py/bin/python", hasServer: true },
    );
    assert.deepEqual(r, {
      kind: "ok",
      server: {
        command: "/venv/bin/switcheroo-lsp",
        args: ["serve", "--log-level", "debug"],
        source: "switcheroo.path",
      },
    });
  });

  it("appends serve to a path given as the executable alone", () => {
    const r = resolveServerCommand({ path: ["/venv/bin/switcheroo-lsp"] }, env(["/venv/bin/switcheroo-lsp"]));
    assert.equal(r.kind, "ok");
    assert.deepEqual(r.kind === "ok" && r.server.args, ["serve"]);
  });

  it("accepts a path written as a plain string", () => {
    const r = resolveServerCommand({ path: "/venv/bin/switcheroo-lsp" }, env(["/venv/bin/switcheroo-lsp"]));
    assert.equal(r.kind === "ok" && r.server.command, "/venv/bin/switcheroo-lsp");
  });

  it("takes a longer path verbatim, e.g. python -m switcheroo_lsp serve", () => {
    const r = resolveServerCommand({ path: ["/venv/bin/python", "-m", "switcheroo_lsp", "serve"] }, env(["/venv/bin/python"]));
    assert.deepEqual(r.kind === "ok" && r.server.args, ["-m", "switcheroo_lsp", "serve"]);
  });

  it("uses switcheroo.interpreter with -m switcheroo_lsp serve when path is empty", () => {
    const r = resolveServerCommand(
      { path: [], interpreter: ["/opt/py/bin/python3", "-X", "utf8"] },
      env(["/opt/py/bin/python3", "/usr/bin/switcheroo-lsp"]),
    );
    assert.deepEqual(r, {
      kind: "ok",
      server: {
        command: "/opt/py/bin/python3",
        args: ["-X", "utf8", "-m", "switcheroo_lsp", "serve"],
        source: "switcheroo.interpreter",
      },
    });
  });

  it("resolves a bare interpreter name on PATH", () => {
    const r = resolveServerCommand({ interpreter: ["python3"] }, env(["/usr/bin/python3"]));
    assert.equal(r.kind === "ok" && r.server.command, "python3");
  });

  it("reports an explicit setting whose executable is missing instead of falling back", () => {
    const r = resolveServerCommand({ path: ["/nope/switcheroo-lsp"] }, env(["/usr/bin/switcheroo-lsp"]));
    assert.equal(r.kind, "not-found");
    assert.deepEqual(r.kind === "not-found" && r.tried, ["switcheroo.path: /nope/switcheroo-lsp"]);
    assert.equal(r.kind === "not-found" && r.explicit?.command, "/nope/switcheroo-lsp");
  });

  it("uses the Python extension's interpreter when it has the server", () => {
    const r = resolveServerCommand({}, env(["/usr/bin/switcheroo-lsp"]), {
      interpreter: "/proj/.venv/bin/python",
      hasServer: true,
    });
    assert.deepEqual(r, {
      kind: "ok",
      server: { command: "/proj/.venv/bin/python", args: ["-m", "switcheroo_lsp", "serve"], source: "python-extension" },
    });
  });

  it("falls back to PATH when the Python extension's interpreter lacks the server", () => {
    const r = resolveServerCommand({}, env(["/usr/bin/switcheroo-lsp"]), {
      interpreter: "/proj/.venv/bin/python",
      hasServer: false,
    });
    assert.deepEqual(r, {
      kind: "ok",
      server: { command: "/usr/bin/switcheroo-lsp", args: ["serve"], source: "PATH" },
    });
  });

  it("finds switcheroo-lsp on PATH in PATH order", () => {
    const r = resolveServerCommand({}, env(["/usr/bin/switcheroo-lsp", "/usr/local/bin/switcheroo-lsp"]));
    assert.equal(r.kind === "ok" && r.server.command, "/usr/local/bin/switcheroo-lsp");
  });

  it("says what it tried when nothing is found", () => {
    const r = resolveServerCommand({}, env([]), { interpreter: "/p/python", hasServer: false });
    assert.equal(r.kind, "not-found");
    assert.equal(r.kind === "not-found" && r.tried.length, 2);
    assert.match(r.kind === "not-found" ? r.tried.join("\n") : "", /switcheroo-lsp on PATH/);
  });

  it("ignores junk in the settings", () => {
    const r = resolveServerCommand({ path: [42, ""], interpreter: null }, env(["/usr/bin/switcheroo-lsp"]));
    assert.equal(r.kind === "ok" && r.server.source, "PATH");
  });

  it("expands ${workspaceFolder} and ~ in explicit commands", () => {
    const s = commandFromSettings(
      { path: ["${workspaceFolder}/.venv/bin/switcheroo-lsp", "serve"], interpreter: [] },
      env([]),
    );
    assert.equal(s?.command, "/ws/.venv/bin/switcheroo-lsp");
    const i = commandFromSettings({ interpreter: ["~/py/bin/python"] }, env([]));
    assert.equal(i?.command, "/home/u/py/bin/python");
  });
});

describe("findOnPath", () => {
  it("tries PATHEXT on Windows", () => {
    const found = findOnPath(
      "switcheroo-lsp",
      env(["C:\\py\\Scripts/switcheroo-lsp.EXE"], {
        platform: "win32",
        envPath: "C:\\Windows;C:\\py\\Scripts",
        envPathExt: ".COM;.EXE",
      }),
    );
    assert.ok(found?.endsWith("switcheroo-lsp.EXE"));
  });

  it("skips empty PATH entries", () => {
    assert.equal(findOnPath("switcheroo-lsp", env([], { envPath: "::" })), undefined);
  });
});

describe("expandVariables", () => {
  it("leaves ${workspaceFolder} alone without a folder and reads ${env:X}", () => {
    const e = env([], { workspaceFolder: undefined });
    assert.equal(expandVariables("${workspaceFolder}/x", e), "${workspaceFolder}/x");
    assert.equal(expandVariables("${env:VENV}/bin/python", e, { VENV: "/v" }), "/v/bin/python");
    assert.equal(expandVariables("${userHome}/a", e), "/home/u/a");
  });
});

describe("buildServerOptions", () => {
  it("forwards select, ignore and severity", () => {
    assert.deepEqual(
      buildServerOptions({ select: ["OPX1", "OPX201"], ignore: ["OPX105"], severity: { OPX101: "warning" } }),
      { select: ["OPX1", "OPX201"], ignore: ["OPX105"], severity: { OPX101: "warning" } },
    );
  });

  it("normalises case and drops what the server would reject", () => {
    assert.deepEqual(
      buildServerOptions({
        select: ["opx101", "E501", 3],
        ignore: "OPX103",
        severity: { opx102: "Error", OPX103: "fatal", OPX104: 1, nope: "hint" },
      }),
      { select: ["OPX101"], ignore: ["OPX103"], severity: { OPX102: "error" } },
    );
  });

  it("forwards a known target and leaves an empty or unknown one to pyproject.toml", () => {
    assert.deepEqual(buildServerOptions({ target: "flax-nnx" }), { target: "flax-nnx" });
    assert.deepEqual(buildServerOptions({ target: " Optax " }), { target: "optax" });
    assert.deepEqual(buildServerOptions({ target: "" }), {});
    assert.deepEqual(buildServerOptions({ target: "haiku" }), {});
    assert.deepEqual(buildServerOptions({ target: 3 }), {});
  });

  it("leaves out what is unset or empty, so pyproject.toml and server defaults apply", () => {
    assert.deepEqual(buildServerOptions({}), {});
    assert.deepEqual(buildServerOptions({ select: [], ignore: [], severity: {} }), {});
    assert.deepEqual(buildServerOptions({ select: ["bogus"], severity: ["OPX101"] }), {});
    assert.deepEqual(buildServerOptions({ ignore: ["OPX2"] }), { ignore: ["OPX2"] });
  });
});

describe("formatCommand", () => {
  it("quotes arguments with spaces", () => {
    assert.equal(
      formatCommand({ command: "/a b/python", args: ["-m", "switcheroo_lsp", "serve"] }),
      '"/a b/python" -m switcheroo_lsp serve',
    );
  });
});

describe("startErrorMessage", () => {
  it("tells how to install the server and mentions switcheroo.path", () => {
    const m = startErrorMessage();
    assert.match(m, /pip install switcheroo-lsp/);
    assert.match(m, /switcheroo\.path/);
    assert.doesNotMatch(m, /`/); // notifications show backticks literally
  });

  it("names an explicit setting that points nowhere", () => {
    const m = startErrorMessage({ source: "switcheroo.path", command: "/nope/switcheroo-lsp" });
    assert.match(m, /"switcheroo\.path" \(\/nope\/switcheroo-lsp\)/);
  });
});
