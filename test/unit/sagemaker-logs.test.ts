/**
 * Following a training job's CloudWatch log, against a small CloudWatch Logs
 * test server (JSON protocol, Logs_20140328.*) that throttles on purpose, as
 * the real service does when asked too often, and serves two instances' streams.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import os from "node:os";
import { makeContext } from "../../src/context.js";
import { TrainingLog, LOG_GROUP } from "../../src/backends/sagemaker/logs.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

interface Call {
  target: string;
  body: Record<string, unknown>;
}

let server: http.Server;
let url = "";
const calls: Call[] = [];
let throttleNext = 0;
/** How many of the next calls the server drops without an answer (the client sees "socket hang up"). */
let hangUpNext = 0;
/** Stream name → its events; a test appends to them between reads. */
const streams = new Map<string, string[]>();

before(async () => {
  server = http.createServer((request, response) => {
    let text = "";
    request.on("data", (chunk) => (text += chunk));
    request.on("end", () => {
      const target = String(request.headers["x-amz-target"]).replace("Logs_20140328.", "");
      const body = JSON.parse(text || "{}") as Record<string, unknown>;
      calls.push({ target, body });
      if (hangUpNext > 0) {
        hangUpNext--;
        return request.socket.destroy();
      }
      const send = (status: number, answer: object): void => {
        response.writeHead(status, { "Content-Type": "application/x-amz-json-1.1" });
        response.end(JSON.stringify(answer));
      };
      if (throttleNext > 0) {
        throttleNext--;
        return send(400, { __type: "ThrottlingException", message: "Rate exceeded" });
      }
      if (body.logGroupName !== LOG_GROUP || streams.size === 0)
        return send(400, { __type: "ResourceNotFoundException", message: "The specified log group does not exist." });
      if (target === "DescribeLogStreams") {
        const prefix = String(body.logStreamNamePrefix);
        return send(200, { logStreams: [...streams.keys()].filter((name) => name.startsWith(prefix)).map((logStreamName) => ({ logStreamName })) });
      }
      if (target === "GetLogEvents") {
        const events = streams.get(String(body.logStreamName)) ?? [];
        const from = body.nextToken ? Number(String(body.nextToken).slice(2)) : 0;
        const page = events.slice(from, from + 2); // small pages, so reading on across pages is exercised
        const next = from + page.length;
        return send(200, {
          events: page.map((message, i) => ({ timestamp: 1_700_000_000_000 + from + i, message })),
          nextForwardToken: `f/${next}`,
          nextBackwardToken: "b/0",
        });
      }
      send(400, { __type: "UnknownOperationException", message: target });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function context() {
  return makeContext({
    cwd: os.tmpdir(),
    env: {
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: url,
      AWS_EC2_METADATA_DISABLED: "true",
    },
  });
}

test("CloudWatch Logs test server: every stream of the job is read, each line once, across pages and reads; several instances are told apart", async () => {
  streams.clear();
  streams.set("job-a/algo-1-1700000000", ["one", "two", "three"]);
  streams.set("other-job/algo-1-1700000000", ["not ours"]);
  const log = new TrainingLog("job-a", context());
  assert.deepEqual(await log.read(), ["one", "two", "three"]);
  assert.deepEqual(await log.read(), [], "nothing new, nothing repeated");
  streams.get("job-a/algo-1-1700000000")!.push("four\nfive");
  streams.set("job-a/algo-2-1700000000", ["hello from 2"]);
  const next = [...(await log.read()), ...(await log.read())];
  assert.ok(next.includes("[algo-1] four") && next.includes("[algo-1] five") && next.includes("[algo-2] hello from 2"), next.join(" | "));
  assert.ok(!next.some((line) => line.includes("not ours")));
});

test("CloudWatch Logs test server: connections dropped past the SDK's own retries are tried again, and no line is lost", async () => {
  streams.clear();
  streams.set("job-c/algo-1-1700000000", ["a", "b"]);
  calls.length = 0;
  hangUpNext = 6; // more than the SDK's five attempts
  const lines = await new TrainingLog("job-c", context()).read();
  assert.deepEqual(lines, ["a", "b"]);
  assert.equal(hangUpNext, 0);
});

test("CloudWatch Logs test server: calls throttled past the SDK's own retries are retried again, and no line is lost", async () => {
  streams.clear();
  streams.set("job-b/algo-1-1700000000", ["a", "b"]);
  calls.length = 0;
  throttleNext = 7; // more than the SDK's five attempts
  const lines = await new TrainingLog("job-b", context()).read();
  assert.deepEqual(lines, ["a", "b"]);
  assert.equal(throttleNext, 0);
  assert.ok(calls.length >= 9, `every throttled call was made again (${calls.length} calls)`);
});

test("CloudWatch Logs test server: no log group yet (the job has not started writing) is no lines, not an error", async () => {
  streams.clear();
  const log = new TrainingLog("job-c", context());
  assert.deepEqual(await log.read(), []);
});
