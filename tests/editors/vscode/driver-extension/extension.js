// Test-only driver: runs inside the VS Code extension host beside the real switcheroo
// extension and exercises it through the same public API any user action goes through.
// The request (JSON) is named by $SWITCHEROO_E2E_REQUEST:
//   { "file": "train.py", "result": "/abs/result.json", "fixCode": "OPX101",
//     "timeoutMs": 60000, "ignoreOnChange": "OPX103", "restart": true, "alsoOpen": ["a.py"],
//     "pythonFallback": true, "notebook": { "file": "train.ipynb", "fixCode": "OPX101" },
//     "verify": true }
// The result JSON always gets written, with "error" set when a step failed, so the pytest
// side never has to wait for its own timeout to learn what went wrong.
"use strict";

const fs = require("fs");
const path = require("path");
const vscode = require("vscode");

const REAL_EXTENSION = "switcheroo.switcheroo-lsp";
const SOURCE = "switcheroo";

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what, probe, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(intervalMs);
  }
}

function codeOf(diagnostic) {
  const code = diagnostic.code;
  return code !== null && typeof code === "object" ? String(code.value) : code === undefined ? null : String(code);
}

function rangeJson(r) {
  return { start: [r.start.line, r.start.character], end: [r.end.line, r.end.character] };
}

function diagnosticsJson(uri) {
  return vscode.languages
    .getDiagnostics(uri)
    .filter((d) => d.source === SOURCE)
    .map((d) => ({
      code: codeOf(d),
      severity: String(vscode.DiagnosticSeverity[d.severity] || d.severity).toLowerCase(),
      message: d.message,
      range: rangeJson(d.range),
    }));
}

function hoverText(hovers) {
  const parts = [];
  for (const hover of hovers || []) {
    for (const c of hover.contents) {
      parts.push(typeof c === "string" ? c : c.value);
    }
  }
  return parts.join("\n\n");
}

function actionJson(a) {
  return {
    title: a.title,
    kind: a.kind ? a.kind.value : null,
    isPreferred: Boolean(a.isPreferred),
    diagnostics: (a.diagnostics || []).map(codeOf),
    hasEdit: Boolean(a.edit),
    command: a.command ? a.command.command : null,
  };
}

// Waits until the diagnostics stop changing for a moment, so a late second publish is seen.
async function settledDiagnostics(uri, accept, timeoutMs) {
  let last = "";
  let stableSince = 0;
  return waitFor(
    "switcheroo diagnostics",
    () => {
      const now = diagnosticsJson(uri);
      const key = JSON.stringify(now);
      if (key !== last) {
        last = key;
        stableSince = Date.now();
        return null;
      }
      return accept(now) && Date.now() - stableSince >= 500 ? now : null;
    },
    timeoutMs,
  );
}

async function run(request, result) {
  const timeout = request.timeoutMs || 60000;
  const step = (name) => {
    result.steps.push({ name, atMs: Date.now() - result.startedAt });
  };

  // 1. The real extension must come up by its own activation events, before we open anything.
  const ext = vscode.extensions.getExtension(REAL_EXTENSION);
  result.extension = { installed: Boolean(ext) };
  if (!ext) {
    throw new Error(`${REAL_EXTENSION} is not installed`);
  }
  await waitFor("the switcheroo extension to activate", () => ext.isActive, timeout);
  result.extension.activeBeforeOpen = true;
  step("extension active");

  const api = ext.exports;
  const folder = vscode.workspace.workspaceFolders[0].uri.fsPath;
  const uri = vscode.Uri.file(path.join(folder, request.file));

  // 2. Open the file the way a user does, so didOpen goes out.
  const doc = await vscode.workspace.openTextDocument(uri);
  await vscode.window.showTextDocument(doc);
  step("document open");
  result.serverCommand = api && api.serverCommand ? api.serverCommand() : null;

  // 3. Diagnostics.
  result.diagnostics = await settledDiagnostics(uri, (d) => d.length > 0, timeout);
  step("diagnostics");
  const target =
    result.diagnostics.find((d) => d.code === request.fixCode) || result.diagnostics[0];
  const range = new vscode.Range(...target.range.start, ...target.range.end);

  // 4. Hover at the start of the flagged call.
  const hovers = await vscode.commands.executeCommand("vscode.executeHoverProvider", uri, range.start);
  result.hover = hoverText(hovers);
  step("hover");

  // 4b. "Verify this rewrite": the code lens above the construction, and the palette command
  // with the cursor on it; the server runs verify in a subprocess. The next hover shows the verdict.
  if (request.verify) {
    const lenses = await vscode.commands.executeCommand("vscode.executeCodeLensProvider", uri);
    result.codeLenses = (lenses || []).map((l) => ({
      title: l.command ? l.command.title : null,
      command: l.command ? l.command.command : null,
      range: rangeJson(l.range),
    }));
    const editor = vscode.window.activeTextEditor;
    editor.selection = new vscode.Selection(range.start, range.start);
    const t0 = Date.now();
    result.verify = await vscode.commands.executeCommand("switcheroo.verifyRewrite");
    result.verifyMs = Date.now() - t0;
    const after = await vscode.commands.executeCommand("vscode.executeHoverProvider", uri, range.start);
    result.hoverAfterVerify = hoverText(after);
    step("verify");
  }

  // 5. Quick fixes for that diagnostic, and the file-wide fix-all.
  const actions = await vscode.commands.executeCommand(
    "vscode.executeCodeActionProvider",
    uri,
    range,
    vscode.CodeActionKind.QuickFix.value,
  );
  result.actions = (actions || []).map(actionJson);
  const fixAll = await vscode.commands.executeCommand(
    "vscode.executeCodeActionProvider",
    uri,
    new vscode.Range(0, 0, doc.lineCount, 0),
    "source.fixAll.switcheroo",
  );
  result.fixAllActions = (fixAll || []).map(actionJson);
  step("code actions");

  const chosen = (actions || []).find(
    (a) => a.isPreferred && (a.diagnostics || []).some((d) => codeOf(d) === target.code),
  ) || (actions || []).find((a) => a.isPreferred);
  if (!chosen) {
    throw new Error(`no preferred quickfix for ${target.code}`);
  }
  result.applied = { title: chosen.title };
  if (chosen.edit) {
    result.applied.applyEdit = await vscode.workspace.applyEdit(chosen.edit);
  }
  if (chosen.command) {
    await vscode.commands.executeCommand(chosen.command.command, ...(chosen.command.arguments || []));
  }
  result.applied.saved = await doc.save();
  result.savedText = fs.readFileSync(uri.fsPath, "utf8");
  step("quickfix applied and saved");

  // 6. The server sees the edit: the fixed finding goes away.
  try {
    result.diagnosticsAfterFix = await settledDiagnostics(
      uri,
      (d) => !d.some((x) => x.code === target.code),
      Math.min(timeout, 20000),
    );
  } catch (err) {
    result.diagnosticsAfterFix = diagnosticsJson(uri);
    result.diagnosticsAfterFixError = String(err);
  }
  step("diagnostics after fix");

  // 7. A settings change reaches the running server (didChangeConfiguration, then a pull).
  if (request.ignoreOnChange) {
    const t0 = Date.now();
    await vscode.workspace
      .getConfiguration("switcheroo", uri)
      .update("ignore", [request.ignoreOnChange], vscode.ConfigurationTarget.Workspace);
    try {
      result.afterIgnore = await settledDiagnostics(
        uri,
        (d) => d.length > 0 && !d.some((x) => x.code === request.ignoreOnChange),
        Math.min(timeout, 20000),
      );
    } catch (err) {
      result.afterIgnore = diagnosticsJson(uri);
      result.afterIgnoreError = String(err);
    }
    result.afterIgnoreMs = Date.now() - t0;
    step("settings change");
  }

  // 8. The restart command brings a fresh server that diagnoses the open file again.
  if (request.restart) {
    const t0 = Date.now();
    await vscode.commands.executeCommand("switcheroo.restart");
    const again = await settledDiagnostics(uri, (d) => d.length > 0, timeout);
    result.restart = {
      diagnostics: again,
      running: api && api.isRunning ? api.isRunning() : null,
      ms: Date.now() - t0,
    };
    step("restart");
  }

  // 9. Every other Python file of the workspace is diagnosed when opened.
  result.others = {};
  // Shown in tabs, not only opened: the client pulls diagnostics for what is in the editor.
  const others = [];
  for (const name of request.alsoOpen || []) {
    const other = vscode.Uri.file(path.join(folder, name));
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(other), {
      preview: false,
      preserveFocus: true,
    });
    others.push([name, other]);
  }
  for (const [name, other] of others) {
    try {
      result.others[name] = await settledDiagnostics(other, (d) => d.length > 0, Math.min(timeout, 20000));
    } catch (err) {
      result.others[name] = { error: String(err), diagnostics: diagnosticsJson(other) };
    }
  }
  step("other files");

  // 10. A Jupyter notebook: its cells show the findings, and a quick fix changes its cell.
  if (request.notebook) {
    result.notebook = {}; // filled step by step: a failure keeps what was seen before it
    try {
      await notebookSteps(request.notebook, folder, timeout, result.notebook);
    } catch (err) {
      result.notebook.error = err && err.stack ? err.stack : String(err);
    }
    step("notebook");
  }

  // 11. Without switcheroo.path the Python extension's interpreter is used (a fake one in
  // this test), and a change of interpreter restarts the server.
  if (request.pythonFallback) {
    const python = vscode.extensions.getExtension("ms-python.python");
    const before = api.serverCommand();
    await vscode.workspace
      .getConfiguration("switcheroo", uri)
      .update("path", undefined, vscode.ConfigurationTarget.Workspace);
    const fallback = await waitFor(
      "a server started from the Python extension's interpreter",
      () => {
        const cmd = api.serverCommand();
        return cmd && cmd !== before && api.isRunning() ? cmd : null;
      },
      Math.min(timeout, 30000),
    );
    result.pythonExtension = { installed: Boolean(python), serverCommand: fallback };
    result.pythonExtension.diagnostics = await settledDiagnostics(uri, (d) => d.length > 0, Math.min(timeout, 20000));
    python.exports.fireChange();
    const afterChange = await waitFor(
      "a restart after the interpreter changed",
      () => {
        const cmd = api.serverCommand();
        return cmd && cmd !== fallback && api.isRunning() ? cmd : null;
      },
      Math.min(timeout, 30000),
    );
    result.pythonExtension.afterChange = afterChange;
    step("python extension fallback");
  }
}

function cellsJson(notebook) {
  return notebook.getCells().map((cell) => ({
    kind: cell.kind === vscode.NotebookCellKind.Code ? "code" : "markup",
    text: cell.document.getText(),
    diagnostics: cell.kind === vscode.NotebookCellKind.Code ? diagnosticsJson(cell.document.uri) : [],
  }));
}

// Waits until every code cell's diagnostics have stopped changing for a moment and `accept`s them.
async function settledCells(notebook, accept, timeoutMs) {
  let last = "";
  let stableSince = 0;
  return waitFor(
    "switcheroo diagnostics in the notebook's cells",
    () => {
      const now = cellsJson(notebook);
      const key = JSON.stringify(now);
      if (key !== last) {
        last = key;
        stableSince = Date.now();
        return null;
      }
      return accept(now) && Date.now() - stableSince >= 500 ? now : null;
    },
    timeoutMs,
  );
}

async function notebookSteps(spec, folder, timeout, out) {
  const uri = vscode.Uri.file(path.join(folder, spec.file));
  const notebook = await vscode.workspace.openNotebookDocument(uri);
  await vscode.window.showNotebookDocument(notebook);
  out.notebookType = notebook.notebookType;
  const hasCode = (cells) => cells.some((c) => c.diagnostics.some((d) => d.code === spec.fixCode));
  out.cells = await settledCells(notebook, hasCode, timeout);

  const index = out.cells.findIndex((c) => c.diagnostics.some((d) => d.code === spec.fixCode));
  const cell = notebook.cellAt(index);
  const target = out.cells[index].diagnostics.find((d) => d.code === spec.fixCode);
  const range = new vscode.Range(...target.range.start, ...target.range.end);
  out.fixedCell = index;

  const hovers = await vscode.commands.executeCommand("vscode.executeHoverProvider", cell.document.uri, range.start);
  out.hover = hoverText(hovers);

  const actions = await vscode.commands.executeCommand(
    "vscode.executeCodeActionProvider",
    cell.document.uri,
    range,
    vscode.CodeActionKind.QuickFix.value,
  );
  out.actions = (actions || []).map(actionJson);
  // vscode.executeCodeActionProvider leaves out the actions' diagnostics: the range picks them.
  const chosen = (actions || []).find((a) => a.isPreferred);
  if (!chosen) {
    throw new Error(`no preferred quickfix for ${spec.fixCode} in cell ${index}`);
  }
  out.applied = { title: chosen.title, applyEdit: chosen.edit ? await vscode.workspace.applyEdit(chosen.edit) : null };
  try {
    out.after = await settledCells(
      notebook,
      (cells) => !cells[index].diagnostics.some((d) => d.code === spec.fixCode),
      Math.min(timeout, 20000),
    );
  } catch (err) {
    out.after = cellsJson(notebook);
    out.afterError = String(err);
  }
  // Saving runs notebook.codeActionsOnSave (the workspace settings ask for the fix-all).
  out.saved = await notebook.save();
  out.savedText = fs.readFileSync(uri.fsPath, "utf8");
  out.afterSave = cellsJson(notebook);
}

function writeResult(file, result) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(result, null, 2));
  fs.renameSync(tmp, file); // the reader never sees half a file
}

function activate() {
  const requestFile = process.env.SWITCHEROO_E2E_REQUEST;
  if (!requestFile || !fs.existsSync(requestFile)) {
    return;
  }
  const request = JSON.parse(fs.readFileSync(requestFile, "utf8"));
  const result = { startedAt: Date.now(), steps: [], vscodeVersion: vscode.version };
  // Not awaited: activation must return so that the workbench goes on starting.
  run(request, result)
    .catch((err) => {
      result.error = err && err.stack ? err.stack : String(err);
    })
    .finally(() => {
      result.totalMs = Date.now() - result.startedAt;
      writeResult(request.result, result);
    });
}

module.exports = { activate, deactivate() {} };
