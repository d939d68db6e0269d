/**
 * Digests a growing file on a second core: the parent sends byte ranges in
 * order as they finish downloading, then asks for the digest. Keeps a large
 * download's whole-object check (an MD5 ETag or a full-object checksum) off
 * the thread that moves the bytes. The algorithm comes in `workerData`.
 */
import fs from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { makeDigest, type DigestAlgorithm } from "./s3-verify.js";

const digest = makeDigest((workerData as { algorithm: DigestAlgorithm }).algorithm);
let queue: Promise<void> = Promise.resolve();

parentPort!.on("message", (message: { file: string; start: number; end: number } | { digest: true }) => {
  queue = queue.then(async () => {
    const sum = await digest;
    if ("digest" in message) {
      parentPort!.postMessage(await sum.digest());
      return;
    }
    for await (const chunk of fs.createReadStream(message.file, { start: message.start, end: message.end, highWaterMark: 1024 * 1024 }))
      sum.update(chunk as Buffer);
  });
});
