// Classifies the server's stderr lines by log level. vscode-languageclient would log every
// stderr line as an error, so a harmless Python `WARNING`/`INFO` record would look like a
// failure in the Switcheroo output channel. No `vscode` import: unit-tested under node.

export type Level = "trace" | "debug" | "info" | "warn" | "error";

const LEVEL_WORD = /\b(CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|DEBUG|TRACE)\b/;

const LEVELS: Record<string, Level> = {
  CRITICAL: "error",
  FATAL: "error",
  ERROR: "error",
  WARNING: "warn",
  WARN: "warn",
  INFO: "info",
  DEBUG: "debug",
  TRACE: "trace",
};

/**
 * Returns a classifier for successive lines. A line with a level word near its start (Python
 * logging puts it in the first few fields) sets the level; a traceback is an error; any other
 * line continues the record before it (tracebacks, multi-line messages).
 */
export function stderrClassifier(): (line: string) => Level {
  let previous: Level = "info";
  return (line: string) => {
    const head = line.slice(0, 60);
    const word = LEVEL_WORD.exec(head);
    if (word) {
      previous = LEVELS[word[1]];
    } else if (line.startsWith("Traceback (most recent call last)")) {
      previous = "error";
    }
    return previous;
  };
}
