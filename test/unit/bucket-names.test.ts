/**
 * Output paths are checked before anything runs (issue 20, item 7): bucket names by their service's published rules
 * (https://cloud.google.com/storage/docs/buckets#naming, https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html),
 * and no `..`, `?` or control character in the path.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../../src/errors.js";
import { buildSpec } from "../../src/jobs/spec.js";
import { gcsBucketProblems, outputLocationProblems, s3BucketProblems } from "../../src/storage/location.js";
import { fileTimeLimit } from "../helpers/limit.js";
import { writeTree } from "../helpers/tree.js";

fileTimeLimit(1, import.meta.url);

test("Cloud Storage bucket names: the rules of cloud.google.com/storage/docs/buckets#naming", () => {
  for (const good of ["my-bucket", "a_b", "abc", "my.bucket.example", "1bucket", `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}`])
    assert.deepEqual(gcsBucketProblems(good), [], good);
  for (const bad of [
    "a..b",
    "goog-x",
    "googlebucket",
    "my-google-stuff",
    "192.168.1.1",
    "ab",
    "a".repeat(64),
    "My-Bucket",
    "-abc",
    "abc_",
    `${"a".repeat(64)}.b`,
  ])
    assert.notDeepEqual(gcsBucketProblems(bad), [], bad);
});

test("S3 bucket names: the rules of docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html", () => {
  for (const good of ["my-bucket", "my.bucket", "abc", "123"]) assert.deepEqual(s3BucketProblems(good), [], good);
  for (const bad of ["a..b", "192.168.1.1", "xn--abc", "bucket-s3alias", "bucket--ol-s3", "ab", "a".repeat(64), "My-Bucket", "my_bucket", "-abc", "abc-"])
    assert.notDeepEqual(s3BucketProblems(bad), [], bad);
});

test("output paths with a '..' part, '?' or a control character are refused; the spec names every problem before anything runs", async () => {
  assert.deepEqual(outputLocationProblems("s3://bucket/sagemaker/runs"), []);
  assert.deepEqual(outputLocationProblems("/home/me/out"), []);
  assert.match(outputLocationProblems("gs://bucket/runs/../x").join(), /'\.' or '\.\.' part/);
  assert.match(outputLocationProblems("s3://bucket/runs?x=1").join(), /'\?' or '#'/);
  assert.match(outputLocationProblems("/tmp/out\x1b[2J").join(), /control character/);
  const dir = writeTree({ "train.py": "print(1)\n" });
  for (const [backend, outputPath, problem] of [
    ["vertex", "gs://a..b/runs", /bucket name "a\.\.b" .* not one Cloud Storage allows.*buckets#naming/],
    ["vertex", "gs://goog-x/runs", /may not start with goog/],
    ["vertex", "gs://192.168.1.1/runs", /may not be an IP address/],
    ["sagemaker", "s3://bucket/runs/../x", /'\.' or '\.\.' part/],
    ["sagemaker", "s3://xn--bucket/runs", /may not start with xn--.*bucketnamingrules\.html/],
  ] as const)
    await assert.rejects(
      () => buildSpec({ artifact: "train.py", backend, config: { output_path: outputPath, project: "p" } }, dir),
      (err: unknown) => err instanceof UserError && problem.test([err.message, ...err.details].join("\n")),
      outputPath,
    );
});
