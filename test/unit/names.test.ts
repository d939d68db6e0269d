import { test } from "node:test";
import assert from "node:assert/strict";
import { isValidJobName, makeJobName, MAX_JOB_NAME } from "../../src/jobs/names.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const when = new Date("2026-11-26T18:42:14.123Z");
const fixed = (): Buffer => Buffer.from([0, 1, 2, 25]);

test("job names are stem, UTC time stamp and four random characters", () => {
  assert.equal(makeJobName("train", when, fixed), "train-20261126-184214-abcz");
});

test("job names are cleaned to [a-z0-9-], start with a letter and fit in 63 characters", () => {
  assert.equal(makeJobName("My_Model v2", when, fixed), "my-model-v2-20261126-184214-abcz");
  assert.equal(makeJobName("2024 run", when, fixed), "job-2024-run-20261126-184214-abcz");
  assert.equal(makeJobName("___", when, fixed), "job-20261126-184214-abcz");
  const long = makeJobName("a".repeat(100), when, fixed);
  assert.equal(long.length, MAX_JOB_NAME);
  assert.ok(isValidJobName(long));
  for (let i = 0; i < 200; i++) assert.ok(isValidJobName(makeJobName("Ünïcode—stem 🙂 " + i)));
});

test("two names made in the same second differ", () => {
  assert.notEqual(makeJobName("train", when), makeJobName("train", when));
});
