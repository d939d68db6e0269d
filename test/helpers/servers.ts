/** Real servers the storage tests talk to, on loopback: moto (AWS) and s3rver (a signature-checking S3). */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** A free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch {
      if (Date.now() - start > timeoutMs) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** A running moto server: its URL, and a stop. */
export interface Moto {
  url: string;
  stop(): Promise<void>;
}

/** Start `moto_server` on a free loopback port. */
export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const child: ChildProcess = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/moto-api/`);
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** A running s3rver, which checks request signatures against its key pair (S3RVER / S3RVER). */
export interface S3rverHandle {
  url: string;
  stop(): Promise<void>;
}

/** Start s3rver on a free loopback port with `buckets` made. */
export async function startS3rver(buckets: readonly string[]): Promise<S3rverHandle> {
  const name = "s3rver"; // a variable: the package ships no types
  const { default: S3rver } = (await import(name)) as unknown as {
    default: new (options: object) => { run(): Promise<{ port: number }>; close(): Promise<void> };
  };
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "s3rver-"));
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      await server.close();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** The environment for talking to a local S3 at `url` with the given keys; instance metadata is off so nothing leaves loopback. */
export function awsEnv(url: string, key = "testing", secret = "testing"): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: key, AWS_SECRET_ACCESS_KEY: secret, AWS_REGION: "us-east-1", AWS_ENDPOINT_URL: url, AWS_EC2_METADATA_DISABLED: "true" };
}
