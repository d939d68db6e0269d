/**
 * The Vertex backend's reading of Cloud Logging, without a server: the
 * filter's time bounds (gcloud's lib/googlecloudsdk/command_lib/logs/stream.py
 * reads up to now − 5 s), the overlap's deduplication by insertId, and the
 * payloads shown; and the pure parts of the Logging test server's untidy ways.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { entryText, freshEntries, LOG_LAG_MS, logWindowFilter, retryable, rfc3339, timeKey, type LogEntry } from "../../src/backends/vertex/api.js";
import { logFilter } from "../../src/backends/vertex/plan.js";
import { listable, overQuota, payloadOf, polledView } from "../servers/vertex-fake.js";
import { UserError } from "../../src/errors.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const entry = (insertId: string, timestamp: string, textPayload = insertId): LogEntry => ({ insertId, timestamp, textPayload });

test("the filter of a read: the job, a lower bound (inclusive) and an upper one (exclusive) when following", { timeout: 10_000 }, () => {
  const base = logFilter("42");
  assert.equal(
    logWindowFilter(base, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00.000Z"),
    'resource.type="ml_job" AND resource.labels.job_id="42" AND timestamp>="2026-01-01T00:00:00Z" AND timestamp<"2026-01-01T00:01:00.000Z"',
  );
  assert.equal(logWindowFilter(base, "2026-01-01T00:00:00Z"), `${base} AND timestamp>="2026-01-01T00:00:00Z"`, "a one-off read has no upper bound");
  assert.equal(LOG_LAG_MS, 5_000, "gcloud's lag: the newest 5 s are never read");
  assert.equal(rfc3339(Date.parse("2026-01-01T00:00:05Z") - LOG_LAG_MS), "2026-01-01T00:00:00.000Z");
});

test(
  "freshEntries: each entry once across overlapping reads, by insertId; the window moves to the next lower bound and forgets what is older",
  { timeout: 10_000 },
  () => {
    let window = { lower: "2026-01-01T00:00:00Z", seen: new Map<string, string>() };
    const first = freshEntries([entry("a", "2026-01-01T00:00:01Z"), entry("b", "2026-01-01T00:00:02Z")], window, "2026-01-01T00:00:01.5Z");
    assert.deepEqual(
      first.fresh.map((e) => e.insertId),
      ["a", "b"],
    );
    assert.equal(first.window.lower, "2026-01-01T00:00:01.5Z");
    assert.deepEqual([...first.window.seen.keys()], ["b"], "a is older than the next lower bound: no read lists it again");
    window = first.window;
    // The overlap lists b again, and c, of b's instant, listable only now, and d.
    const second = freshEntries(
      [entry("b", "2026-01-01T00:00:02Z"), entry("c", "2026-01-01T00:00:02.000Z"), entry("d", "2026-01-01T00:00:03Z")],
      window,
      "2026-01-01T00:00:01Z",
    );
    assert.deepEqual(
      second.fresh.map((e) => e.insertId),
      ["c", "d"],
    );
    assert.equal(second.window.lower, "2026-01-01T00:00:01.5Z", "the lower bound never moves back");
    // Without insertId, time and text tell entries apart.
    const plain = freshEntries([{ timestamp: "2026-01-01T00:00:04Z", textPayload: "x" }], second.window, "2026-01-01T00:00:02Z");
    const again = freshEntries([{ timestamp: "2026-01-01T00:00:04.0Z", textPayload: "x" }], plain.window, "2026-01-01T00:00:02Z");
    assert.equal(again.fresh.length, 0);
  },
);

test("timeKey sorts Cloud Logging's times in time order, whatever their fraction", { timeout: 10_000 }, () => {
  assert.ok(timeKey("2026-01-01T00:00:00Z") < timeKey("2026-01-01T00:00:00.5Z"));
  assert.equal(timeKey("2026-01-01T00:00:00.5Z"), timeKey("2026-01-01T00:00:00.500000000Z"));
});

test("entryText: textPayload, else jsonPayload.message, else the jsonPayload itself; nothing for an entry with neither", { timeout: 10_000 }, () => {
  assert.equal(entryText({ textPayload: "hello\n" }), "hello");
  assert.equal(entryText({ jsonPayload: { message: "from json\n" } }), "from json");
  assert.equal(entryText({ jsonPayload: { loss: 1 } }), '{"loss":1}');
  assert.equal(entryText({}), undefined);
});

test("retryable: a 429, a 5xx or no answer is asked again; a refusal or a stop is not", { timeout: 10_000 }, () => {
  assert.ok(retryable(Object.assign(new UserError("x"), { httpStatus: 429 })));
  assert.ok(retryable(Object.assign(new UserError("x"), { httpStatus: 503 })));
  assert.ok(!retryable(Object.assign(new UserError("x"), { httpStatus: 403 })));
  assert.ok(retryable(new TypeError("fetch failed")));
  assert.ok(!retryable(Object.assign(new Error("aborted"), { name: "AbortError" })));
});

test(
  "Logging test server's ways: entries listable late and out of order, a 429 every Nth read, JSON lines as jsonPayload; the Vertex one hides RUNNING",
  { timeout: 10_000 },
  () => {
    const at = Array.from({ length: 12 }, (_, n) => listable(1000 + n, n, 1000));
    assert.ok(
      at.every((when, n) => when >= 1000 + n && when <= 2000 + n),
      "never earlier than written, at most lateMs later",
    );
    assert.ok(
      at.some((when, n) => n > 0 && when < at[n - 1]!),
      "some entry listable before the one written just before it",
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => overQuota(n, 3)),
      [false, false, true, false, false, true],
    );
    assert.equal(overQuota(3, undefined), false);
    assert.deepEqual(payloadOf('{"message": "m", "severity": "WARNING", "step": 1}', true), { jsonPayload: { message: "m", step: 1 }, severity: "WARNING" });
    assert.deepEqual(payloadOf('{"message": "m"}', false), { textPayload: '{"message": "m"}' });
    assert.deepEqual(payloadOf("[1, 2]", true), { textPayload: "[1, 2]" });
    const running = { name: "n", displayName: "d", state: "JOB_STATE_RUNNING", startTime: "t" };
    assert.deepEqual(polledView(running, true), { name: "n", displayName: "d", state: "JOB_STATE_PENDING" });
    assert.equal(polledView(running, false), running);
  },
);
