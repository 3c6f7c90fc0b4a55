import assert from "node:assert/strict";
import { it } from "node:test";
import { stderrClassifier } from "../src/serverLog";

it("takes the level from Python logging records", () => {
  const level = stderrClassifier();
  assert.equal(level("switcheroo: WARNING Cancel notification for unknown message id"), "warn");
  assert.equal(level("INFO:pygls.server:Starting IO server"), "info");
  assert.equal(level("2026-01-01 12:00:00 DEBUG switcheroo.server analysed in 3 ms"), "debug");
  assert.equal(level("switcheroo: ERROR analysis of file:///a.py failed"), "error");
});

it("keeps a record's level on its continuation lines", () => {
  const level = stderrClassifier();
  assert.equal(level("switcheroo: ERROR analysis failed"), "error");
  assert.equal(level("Traceback (most recent call last):"), "error");
  assert.equal(level('  File "x.py", line 1, in <module>'), "error");
  assert.equal(level("ValueError: boom"), "error");
  assert.equal(level("switcheroo: INFO recovered"), "info");
});

it("treats a bare traceback as an error and plain lines as info", () => {
  const level = stderrClassifier();
  assert.equal(level("hello"), "info");
  assert.equal(level("Traceback (most recent call last):"), "error");
});

it("ignores level words deep inside a message", () => {
  const level = stderrClassifier();
  assert.equal(
    level("switcheroo: INFO " + "x".repeat(60) + " the user's file mentions ERROR here"),
    "info",
  );
});
