// VS Code side of switcheroo-lsp: finds the server, starts it over stdio, and keeps it in
// step with the settings. Everything decidable without VS Code lives in ./settings.

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as readline from "node:readline";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  type Executable,
  LanguageClient,
  type LanguageClientOptions,
  TransportKind,
} from "vscode-languageclient/node";
import {
  type Environment,
  PROBE_ARGS,
  RESTART_SETTINGS,
  type RawSettings,
  type ServerCommand,
  buildServerOptions,
  commandFromSettings,
  formatCommand,
  resolveServerCommand,
  startErrorMessage,
} from "./settings";
import { stderrClassifier } from "./serverLog";

const SECTION = "switcheroo";
const PYTHON_EXTENSION = "ms-python.python";

/** The slice of the Python extension's public API we use; every member may be missing. */
interface PythonApi {
  environments?: {
    getActiveEnvironmentPath?(resource?: vscode.Uri): { id: string; path: string } | undefined;
    resolveEnvironment?(
      env: { id: string; path: string } | string,
    ): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
}

/** What `activate` returns; the end-to-end driver reads it to report which server ran. */
export interface SwitcherooApi {
  serverCommand(): ServerCommand | undefined;
  isRunning(): boolean;
}

let client: LanguageClient | undefined;
let current: ServerCommand | undefined;
let output: vscode.LogOutputChannel;
// Starts and stops are chained so that a burst of setting changes cannot run two servers.
let queue: Promise<void> = Promise.resolve();
// Set while a restart is queued: the client about to be replaced must not be sent anything.
let restartPending = false;

function enqueue(task: () => Promise<void>): Promise<void> {
  queue = queue.then(task, task).catch((err) => output.error(`Switcheroo: ${String(err)}`));
  return queue;
}

function scopeUri(): vscode.Uri | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri;
}

/** The first folder on disk; undefined for no folder or a virtual one (no cwd to give). */
function workspaceDir(): string | undefined {
  const uri = scopeUri();
  return uri?.scheme === "file" ? uri.fsPath : undefined;
}

function readSettings(scope?: vscode.Uri): RawSettings {
  const config = vscode.workspace.getConfiguration(SECTION, scope ?? scopeUri());
  return {
    path: config.get("path"),
    interpreter: config.get("interpreter"),
    select: config.get("select"),
    ignore: config.get("ignore"),
    severity: config.get("severity"),
    target: config.get("target"),
  };
}

function environment(): Environment {
  return {
    workspaceFolder: workspaceDir(),
    homeDir: os.homedir(),
    envPath: process.env.PATH,
    envPathExt: process.env.PATHEXT,
    platform: process.platform,
    isExecutable: (file) => {
      try {
        fs.accessSync(file, process.platform === "win32" ? fs.constants.F_OK : fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
  };
}

async function pythonApi(): Promise<PythonApi | undefined> {
  const ext = vscode.extensions.getExtension<PythonApi>(PYTHON_EXTENSION);
  if (!ext) {
    return undefined;
  }
  try {
    return ext.isActive ? ext.exports : await ext.activate();
  } catch (err) {
    output.warn(`Python extension API unavailable: ${String(err)}`);
    return undefined;
  }
}

/** The Python extension's active interpreter as an executable path, if it tells us one. */
async function pythonInterpreter(): Promise<string | undefined> {
  const envs = (await pythonApi())?.environments;
  if (!envs?.getActiveEnvironmentPath) {
    return undefined;
  }
  try {
    const active = envs.getActiveEnvironmentPath(scopeUri());
    if (!active) {
      return undefined;
    }
    // The active path can be an environment folder (conda); resolving gives the executable.
    const resolved = envs.resolveEnvironment ? await envs.resolveEnvironment(active) : undefined;
    return resolved?.executable?.uri?.fsPath ?? active.path;
  } catch (err) {
    output.warn(`Could not ask the Python extension for its interpreter: ${String(err)}`);
    return undefined;
  }
}

function canImportServer(python: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(python, PROBE_ARGS, { timeout: 15_000 }, (err) => resolve(!err));
  });
}

async function chooseServer(): Promise<ReturnType<typeof resolveServerCommand>> {
  const raw = readSettings();
  const env = environment();
  let python: { interpreter?: string; hasServer?: boolean } = {};
  // Only consult (and thereby activate) the Python extension when the settings leave it open.
  if (!commandFromSettings(raw, env, process.env)) {
    const interpreter = await pythonInterpreter();
    if (interpreter) {
      python = { interpreter, hasServer: await canImportServer(interpreter) };
    }
  }
  return resolveServerCommand(raw, env, python, process.env);
}

async function showStartError(detail: string, failed?: ServerCommand): Promise<void> {
  output.error(detail);
  const choice = await vscode.window.showErrorMessage(startErrorMessage(failed), "Open Settings", "Show Output");
  if (choice === "Open Settings") {
    await vscode.commands.executeCommand("workbench.action.openSettings", "switcheroo.path");
  } else if (choice === "Show Output") {
    output.show();
  }
}

async function start(): Promise<void> {
  const resolution = await chooseServer();
  if (resolution.kind === "not-found") {
    current = undefined;
    // Not awaited: the message stays up without blocking restarts queued behind us.
    void showStartError(`Server not found; tried ${resolution.tried.join("; ")}.`, resolution.explicit);
    return;
  }
  const server = resolution.server;
  output.info(`Starting ${formatCommand(server)} (from ${server.source})`);

  const executable: Executable = {
    command: server.command,
    args: server.args,
    // TransportKind.stdio makes the client append `--stdio`, which `serve` accepts.
    transport: TransportKind.stdio,
    options: { cwd: workspaceDir(), env: process.env },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "python" },
      { scheme: "untitled", language: "python" },
      // Python cells of Jupyter notebooks. The server declares notebookDocumentSync, so the
      // client syncs them as notebooks (never as loose files); this entry sends the cells'
      // hovers, code actions and diagnostic pulls to the server too.
      { notebook: "jupyter-notebook", language: "python" },
    ],
    outputChannel: output,
    // The server logs to stderr; keep its levels instead of marking every line an error.
    stdioOptions: {
      stdout: (input, channel) => {
        readline.createInterface({ input, crlfDelay: Infinity }).on("line", (line) => channel.info(line));
      },
      stderr: (input, channel) => {
        const level = stderrClassifier();
        readline.createInterface({ input, crlfDelay: Infinity }).on("line", (line) => channel[level(line)](line));
      },
    },
    initializationOptions: buildServerOptions(readSettings()),
    synchronize: { configurationSection: SECTION },
    middleware: {
      workspace: {
        // Answer `workspace/configuration` for our section with the same normalised shape as
        // initializationOptions, so the server has one format to read.
        configuration: async (params, token, next) => {
          const answers = await next(params, token);
          if (!Array.isArray(answers)) {
            return answers;
          }
          return params.items.map((item, i) =>
            item.section === SECTION
              ? buildServerOptions(readSettings(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined))
              : answers[i],
          );
        },
        // Likewise for didChangeConfiguration: { settings: { switcheroo: {select, ignore, severity, target} } }.
        didChangeConfiguration: async (sections, next) => {
          const running = client;
          if (restartPending) {
            return; // the new server gets the settings as initializationOptions
          }
          if (!running || !sections?.includes(SECTION)) {
            return next(sections);
          }
          await running.sendNotification(DidChangeConfigurationNotification.type, {
            settings: { [SECTION]: buildServerOptions(readSettings()) },
          });
        },
      },
    },
  };

  const next = new LanguageClient(SECTION, "Switcheroo", executable, clientOptions);
  client = next;
  current = server;
  try {
    await next.start();
    output.info(`Server started (${formatCommand(server)})`);
  } catch (err) {
    client = undefined;
    current = undefined;
    try {
      await next.dispose(2_000);
    } catch {
      // Already dead: nothing to dispose.
    }
    void showStartError(`Could not start ${formatCommand(server)} (from ${server.source}): ${String(err)}`, server);
  }
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  current = undefined;
  if (running) {
    try {
      await running.dispose(5_000);
    } catch (err) {
      output.warn(`Stopping the server: ${String(err)}`);
    }
  }
}

function restart(reason: string): Promise<void> {
  restartPending = true;
  return enqueue(async () => {
    restartPending = false;
    output.info(`Restarting the server: ${reason}`);
    await stop();
    await start();
  });
}

async function watchPythonInterpreter(context: vscode.ExtensionContext): Promise<void> {
  // Listening needs the Python extension's API, which activates it; it is installed-only,
  // never required.
  if (!vscode.extensions.getExtension(PYTHON_EXTENSION)) {
    return;
  }
  const event = (await pythonApi())?.environments?.onDidChangeActiveEnvironmentPath;
  if (typeof event !== "function") {
    return;
  }
  context.subscriptions.push(
    event(() => {
      if (!commandFromSettings(readSettings(), environment(), process.env)) {
        void restart("the Python interpreter changed");
      }
    }),
  );
}

const VERIFY_COMMAND = "switcheroo.verify";

/**
 * "Switcheroo: Verify this rewrite" from the palette: the server's `switcheroo.verify` (which
 * the code lens above each construction runs too) for the construction under the cursor. The
 * server runs it in a subprocess, shows progress and the verdict; this returns its answer.
 */
async function verifyRewrite(uri?: vscode.Uri, position?: vscode.Position): Promise<unknown> {
  const editor = vscode.window.activeTextEditor;
  const target = uri ?? editor?.document.uri;
  const at = position ?? editor?.selection.active;
  if (!client?.isRunning() || !target || !at) {
    void vscode.window.showWarningMessage(
      "Switcheroo: put the cursor on a torch.optim construction in a Python file (and start the server) to verify its rewrite.",
    );
    return undefined;
  }
  return client.sendRequest(ExecuteCommandRequest.type, {
    command: VERIFY_COMMAND,
    arguments: [{ uri: client.code2ProtocolConverter.asUri(target), position: { line: at.line, character: at.character } }],
  });
}

export async function activate(context: vscode.ExtensionContext): Promise<SwitcherooApi> {
  output = vscode.window.createOutputChannel("Switcheroo", { log: true });
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand("switcheroo.restart", () => restart("requested")),
    vscode.commands.registerCommand("switcheroo.verifyRewrite", verifyRewrite),
    vscode.workspace.onDidChangeConfiguration((event) => {
      const changed = RESTART_SETTINGS.find((s) => event.affectsConfiguration(s));
      if (changed) {
        void restart(`${changed} changed`);
      }
    }),
    // switcheroo.path/interpreter are ignored from untrusted workspace settings; once trusted
    // they may name a different server.
    vscode.workspace.onDidGrantWorkspaceTrust(() => void restart("the workspace was trusted")),
    { dispose: () => void stop() },
  );
  void watchPythonInterpreter(context);
  await enqueue(start);
  return { serverCommand: () => current, isRunning: () => client?.isRunning() ?? false };
}

export function deactivate(): Promise<void> {
  return enqueue(stop);
}
