// Pure logic of the client: which server command to run and what settings to send.
// Deliberately free of any `vscode` import so that `node --test` can exercise it
// without an editor.

import * as path from "node:path";

export const SERVER_EXECUTABLE = "switcheroo-lsp";
export const SERVER_MODULE = "switcheroo_lsp";

/** The raw values of the `switcheroo.*` settings as VS Code hands them over. */
export interface RawSettings {
  path?: unknown;
  interpreter?: unknown;
  select?: unknown;
  ignore?: unknown;
  severity?: unknown;
  target?: unknown;
}

/** Where the server command came from; shown in the output channel and in errors. */
export type CommandSource = "switcheroo.path" | "switcheroo.interpreter" | "python-extension" | "PATH";

export interface ServerCommand {
  command: string;
  args: string[];
  source: CommandSource;
}

/** What the surroundings contribute to the choice; injected so tests can fake it. */
export interface Environment {
  /** Folder for `${workspaceFolder}`; undefined without an open folder. */
  workspaceFolder?: string;
  homeDir: string;
  /** `process.env.PATH` (and PATHEXT on Windows). */
  envPath?: string;
  envPathExt?: string;
  platform: NodeJS.Platform;
  isExecutable: (file: string) => boolean;
}

export type Resolution =
  | { kind: "ok"; server: ServerCommand }
  | { kind: "not-found"; tried: string[]; explicit?: ServerCommand };

const SEVERITIES = new Set(["error", "warning", "information", "hint"]);
/** What the server's rewrites can write (`switcheroo.target`). */
export const TARGETS = ["optax", "flax-nnx"];
const CODE = /^OPX[0-9]*$/;

function stringArray(value: unknown): string[] {
  // A plain string is accepted too: people write "path": "/x/switcheroo-lsp".
  if (typeof value === "string") {
    return value.trim() ? [value] : [];
  }
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter((v): v is string => typeof v === "string" && v.length > 0);
}

/** Expands `${workspaceFolder}`, `${userHome}`, `${env:NAME}` and a leading `~`. */
export function expandVariables(value: string, env: Environment, processEnv: NodeJS.ProcessEnv = {}): string {
  let out = value;
  if (out === "~" || out.startsWith("~/") || out.startsWith("~\\")) {
    out = env.homeDir + out.slice(1);
  }
  return out.replace(/\$\{(workspaceFolder|userHome|env:([^}]+))\}/g, (whole, name: string, envName?: string) => {
    if (name === "workspaceFolder") {
      return env.workspaceFolder ?? whole;
    }
    if (name === "userHome") {
      return env.homeDir;
    }
    return processEnv[envName ?? ""] ?? "";
  });
}

/** Looks a bare command name up on PATH; returns a path that exists, else undefined. */
export function findOnPath(name: string, env: Environment): string | undefined {
  const sep = env.platform === "win32" ? ";" : ":";
  const exts =
    env.platform === "win32" ? ["", ...(env.envPathExt ?? ".EXE;.CMD;.BAT;.COM").split(";").filter(Boolean)] : [""];
  for (const dir of (env.envPath ?? "").split(sep)) {
    if (!dir) {
      continue;
    }
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (env.isExecutable(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

function hasDirectory(command: string): boolean {
  return command.includes("/") || command.includes("\\");
}

/** True when `command` would start: an existing file, or a name found on PATH. */
export function commandExists(command: string, env: Environment): boolean {
  if (hasDirectory(command) || path.isAbsolute(command)) {
    return env.isExecutable(command);
  }
  return findOnPath(command, env) !== undefined;
}

/**
 * The server command from the explicit settings alone, in the contract's order:
 * `switcheroo.path`, then `switcheroo.interpreter`. Undefined when neither is set.
 */
export function commandFromSettings(
  raw: RawSettings,
  env: Environment,
  processEnv: NodeJS.ProcessEnv = {},
): ServerCommand | undefined {
  const serverPath = stringArray(raw.path).map((p) => expandVariables(p, env, processEnv));
  if (serverPath.length > 0) {
    const [command, ...args] = serverPath;
    // `["/venv/bin/switcheroo-lsp"]` means "run the server", as the executable alone would
    // only print usage; anything longer is taken verbatim.
    return { command, args: args.length > 0 ? args : ["serve"], source: "switcheroo.path" };
  }
  const interpreter = stringArray(raw.interpreter).map((p) => expandVariables(p, env, processEnv));
  if (interpreter.length > 0) {
    const [command, ...args] = interpreter;
    return { command, args: [...args, "-m", SERVER_MODULE, "serve"], source: "switcheroo.interpreter" };
  }
  return undefined;
}

/**
 * Chooses the server command.
 *
 * Explicit settings win and are used as given (a wrong one must surface as an error, not be
 * silently replaced). Without them the Python extension's interpreter is used only when it
 * has the server installed (`pythonHasServer`), so a plain project venv without
 * switcheroo-lsp still falls through to `switcheroo-lsp` on PATH.
 */
export function resolveServerCommand(
  raw: RawSettings,
  env: Environment,
  python: { interpreter?: string; hasServer?: boolean } = {},
  processEnv: NodeJS.ProcessEnv = {},
): Resolution {
  const explicit = commandFromSettings(raw, env, processEnv);
  if (explicit) {
    if (!commandExists(explicit.command, env)) {
      return { kind: "not-found", tried: [`${explicit.source}: ${explicit.command}`], explicit };
    }
    return { kind: "ok", server: explicit };
  }
  const tried: string[] = [];
  if (python.interpreter) {
    if (python.hasServer) {
      return {
        kind: "ok",
        server: { command: python.interpreter, args: ["-m", SERVER_MODULE, "serve"], source: "python-extension" },
      };
    }
    tried.push(`Python extension interpreter without ${SERVER_MODULE}: ${python.interpreter}`);
  }
  const onPath = findOnPath(SERVER_EXECUTABLE, env);
  if (onPath) {
    return { kind: "ok", server: { command: onPath, args: ["serve"], source: "PATH" } };
  }
  tried.push(`${SERVER_EXECUTABLE} on PATH`);
  return { kind: "not-found", tried };
}

/** The Python snippet that tells whether an interpreter can import the server (exit 0). */
export const PROBE_ARGS = [
  "-c",
  `import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("${SERVER_MODULE}") else 1)`,
];

/**
 * The settings the server reads, as sent in initializationOptions, workspace/configuration and
 * didChangeConfiguration. A key is present only when the user gave it a value: an absent key
 * leaves the server's own default or `[tool.switcheroo]` from pyproject.toml in force, whereas
 * an empty `select` would mean "report nothing" to the server.
 */
export interface ServerOptions {
  select?: string[];
  ignore?: string[];
  severity?: Record<string, string>;
  target?: string;
}

function codes(value: unknown): string[] {
  return stringArray(value)
    .map((c) => c.trim().toUpperCase())
    .filter((c) => CODE.test(c));
}

/**
 * Normalises `switcheroo.select/ignore/severity/target` into what the server expects: upper-case
 * codes, lower-case severities, a known target, nothing the server would have to reject, no
 * empty values (an empty target leaves `[tool.switcheroo]` in pyproject.toml to decide).
 */
export function buildServerOptions(raw: RawSettings): ServerOptions {
  const out: ServerOptions = {};
  const select = codes(raw.select);
  if (select.length > 0) {
    out.select = select;
  }
  const ignore = codes(raw.ignore);
  if (ignore.length > 0) {
    out.ignore = ignore;
  }
  if (raw.severity && typeof raw.severity === "object" && !Array.isArray(raw.severity)) {
    const severity: Record<string, string> = {};
    for (const [code, level] of Object.entries(raw.severity as Record<string, unknown>)) {
      const key = code.trim().toUpperCase();
      const value = typeof level === "string" ? level.trim().toLowerCase() : "";
      if (CODE.test(key) && SEVERITIES.has(value)) {
        severity[key] = value;
      }
    }
    if (Object.keys(severity).length > 0) {
      out.severity = severity;
    }
  }
  const target = typeof raw.target === "string" ? raw.target.trim().toLowerCase() : "";
  if (TARGETS.includes(target)) {
    out.target = target;
  }
  return out;
}

/** Shell-like rendering of a command for messages and logs. */
export function formatCommand(server: { command: string; args: string[] }): string {
  return [server.command, ...server.args].map((p) => (/[\s"']/.test(p) ? JSON.stringify(p) : p)).join(" ");
}

/** Settings whose change means a different server process. */
export const RESTART_SETTINGS = ["switcheroo.path", "switcheroo.interpreter"];

/**
 * The message shown when no server could be started. Notifications render no Markdown, so
 * commands and settings are quoted plainly. An explicit setting that points nowhere is named,
 * since reinstalling would not help there.
 */
export function startErrorMessage(failed?: { source: CommandSource; command: string }): string {
  const install =
    'Install it with "pip install switcheroo-lsp" (in the Python environment VS Code uses, or anywhere on PATH), ' +
    'or set "switcheroo.path" to the switcheroo-lsp executable.';
  if (failed && (failed.source === "switcheroo.path" || failed.source === "switcheroo.interpreter")) {
    return `Switcheroo: could not start the server from "${failed.source}" (${failed.command}). ${install}`;
  }
  return `Switcheroo: could not start the switcheroo-lsp server. ${install}`;
}
