/**
 * A training job's log read from moto's CloudWatch Logs through a proxy that
 * serves empty pages before the events, as the real GetLogEvents may
 * (test/servers/cloudwatch-proxy.ts): no line is lost, none repeated, and a
 * read ends at the stream's end.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import os from "node:os";
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { makeContext } from "../../src/context.js";
import { LOG_GROUP, TrainingLog } from "../../src/backends/sagemaker/logs.js";
import { startMoto, type Moto } from "../helpers/servers.js";
import { startCloudWatchProxy, type CloudWatchProxy } from "../servers/cloudwatch-proxy.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(15, import.meta.url);

let moto: Moto;
let proxy: CloudWatchProxy;
let logs: CloudWatchLogsClient;

before(async () => {
  moto = await startMoto();
  proxy = await startCloudWatchProxy(moto.url, 3);
  logs = new CloudWatchLogsClient({ region: "us-east-1", endpoint: moto.url, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
  await logs.send(new CreateLogGroupCommand({ logGroupName: LOG_GROUP }));
});

after(async () => {
  logs?.destroy();
  await proxy?.close();
  await moto?.stop();
});

async function write(stream: string, lines: string[]): Promise<void> {
  const start = Date.now();
  await logs.send(
    new PutLogEventsCommand({ logGroupName: LOG_GROUP, logStreamName: stream, logEvents: lines.map((message, i) => ({ timestamp: start + i, message })) }),
  );
}

function context() {
  return makeContext({
    cwd: os.tmpdir(),
    env: {
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: proxy.url,
      AWS_EC2_METADATA_DISABLED: "true",
    },
  });
}

test("moto behind empty pages: a read goes on through empty pages to the traceback at the end, and the next read brings only what is new", async () => {
  const stream = "failing-job/algo-1-1700000000";
  await logs.send(new CreateLogStreamCommand({ logGroupName: LOG_GROUP, logStreamName: stream }));
  const traceback = ["Traceback (most recent call last):", '  File "/opt/ml/code/train.py", line 2, in <module>', "ValueError: no data in /opt/ml/input"];
  await write(stream, ["loading data", ...traceback]);
  const log = new TrainingLog("failing-job", context());
  const served = proxy.emptyServed;
  assert.deepEqual(await log.read(), ["loading data", ...traceback]);
  assert.ok(proxy.emptyServed > served, "empty pages came first");
  assert.deepEqual(await log.read(), [], "nothing new, nothing repeated");
  await write(stream, ["one more line"]);
  assert.deepEqual(await log.read(), ["one more line"]);
});
