/**
 * Digests a growing file on a second core: the parent sends byte ranges in
 * order as they finish downloading, then asks for the digests. Keeps a large
 * download's whole-object checks (an MD5 ETag, a full-object checksum, Cloud
 * Storage's CRC32C and MD5) off the thread that moves the bytes. The
 * algorithms come in `workerData`; the digests go back in that order.
 *
 * The ranges are read from the page cache into one reused buffer: reading
 * them as a stream allocated a fresh 1 MiB buffer per read, and those
 * allocations (page faults, then garbage) cost the worker more than a
 * quarter of its time in a profile of a 1 GiB fetch.
 */
import fs from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { makeDigest, type Digest, type DigestAlgorithm } from "./s3-verify.js";

const READ = 4 * 1024 * 1024;
const sums: Promise<Digest[]> = Promise.all((workerData as { algorithms: DigestAlgorithm[] }).algorithms.map((algorithm) => makeDigest(algorithm)));
const buffer = Buffer.allocUnsafe(READ);
let queue: Promise<void> = Promise.resolve();
/** The first read that failed: the digests are then answered with it, never with a digest of less than the file. */
let failed: string | undefined;

parentPort!.on("message", (message: { file: string; start: number; end: number } | { digest: true }) => {
  queue = queue.then(async () => {
    const digests = await sums;
    if ("digest" in message) {
      parentPort!.postMessage(failed !== undefined ? { error: failed } : await Promise.all(digests.map((digest) => digest.digest())));
      return;
    }
    if (failed !== undefined) return;
    const fd = fs.openSync(message.file, "r");
    try {
      for (let position = message.start; position <= message.end;) {
        const bytes = fs.readSync(fd, buffer, 0, Math.min(READ, message.end + 1 - position), position);
        if (bytes === 0) throw new Error(`${message.file} ended at byte ${position}, before ${message.end + 1}`);
        const chunk = buffer.subarray(0, bytes);
        for (const digest of digests) digest.update(chunk);
        position += bytes;
      }
    } catch (err) {
      failed = (err as Error).message;
    } finally {
      fs.closeSync(fd);
    }
  });
});
