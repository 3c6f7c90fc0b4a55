// Test-only stand-in for the Python extension's environments API (the shape of
// @vscode/python-extension), answering with the interpreter the test names.
"use strict";

const vscode = require("vscode");

function activate() {
  const python = process.env.SWITCHEROO_E2E_PYTHON || "python3";
  const changed = new vscode.EventEmitter();
  const active = () => ({ id: python, path: python });
  return {
    environments: {
      getActiveEnvironmentPath: () => active(),
      resolveEnvironment: async () => ({ id: python, path: python, executable: { uri: vscode.Uri.file(python) } }),
      onDidChangeActiveEnvironmentPath: changed.event,
    },
    // For the driver: what a user's interpreter switch looks like to listeners.
    fireChange: () => changed.fire({ ...active(), resource: undefined }),
  };
}

module.exports = { activate, deactivate() {} };
