/**
 * Hashes a growing file on a second core: the parent sends byte ranges in
 * order as they finish downloading, then asks for the digest. Keeps the MD5
 * of a large download off the thread that moves the bytes.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import { parentPort } from "node:worker_threads";

const hash = createHash("md5");
let queue: Promise<void> = Promise.resolve();

parentPort!.on("message", (message: { file: string; start: number; end: number } | { digest: true }) => {
  queue = queue.then(async () => {
    if ("digest" in message) {
      parentPort!.postMessage(hash.digest("hex"));
      return;
    }
    for await (const chunk of fs.createReadStream(message.file, { start: message.start, end: message.end, highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  });
});
