/**
 * A proxy in front of moto's CloudWatch Logs that answers GetLogEvents as the
 * real service may: with empty pages before the events that follow. The
 * GetLogEvents reference says so ("This operation can return empty results
 * while there are more log events available through the token"; "as long as
 * nextForwardToken is not equal to the token you passed, there might be
 * more"), and a client that stops at the first empty page loses the end of
 * the log. moto never does this. Every other call passes through unchanged.
 *
 * For a token it has not answered before, the proxy sends `emptyPages` empty
 * pages, each with a new forward token, then moto's page. At a stream's end it
 * gives back the very token the client passed, as CloudWatch does.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** A running proxy: its URL, how many empty pages it puts before each real one, and how many it served. */
export interface CloudWatchProxy {
  url: string;
  emptyPages: number;
  /** Empty pages served so far. */
  emptyServed: number;
  close(): Promise<void>;
}

const PREFIX = "proxy-empty/";

/** Start the proxy on loopback in front of moto at `upstream`. */
export async function startCloudWatchProxy(upstream: string, emptyPages = 3): Promise<CloudWatchProxy> {
  const target = new URL(upstream);
  const state: CloudWatchProxy = { url: "", emptyPages, emptyServed: 0, close: async () => {} };

  /** Forward a request to moto as it came; the answer's status, headers and body. */
  const forward = (req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const out = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, "content-length": body.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      out.on("error", reject);
      out.end(body);
    });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", async () => {
      const raw = Buffer.concat(chunks);
      const send = (status: number, headers: http.OutgoingHttpHeaders, body: Buffer): void => {
        res.writeHead(status, { ...headers, "content-length": body.length });
        res.end(body);
      };
      try {
        if (!String(req.headers["x-amz-target"]).endsWith(".GetLogEvents")) {
          const answer = await forward(req, raw);
          return send(answer.status, answer.headers, answer.body);
        }
        const request = JSON.parse(raw.toString() || "{}") as { nextToken?: string };
        const passed = request.nextToken;
        const proxied = passed?.startsWith(PREFIX) ? /^proxy-empty\/(\d+)\/(.*)$/.exec(passed) : null;
        const count = proxied ? Number(proxied[1]) : 0;
        const real = proxied ? proxied[2] || undefined : passed;
        if (count < state.emptyPages) {
          state.emptyServed++;
          const page = { events: [], nextForwardToken: `${PREFIX}${count + 1}/${real ?? ""}`, nextBackwardToken: "b/0" };
          return send(200, { "content-type": "application/x-amz-json-1.1" }, Buffer.from(JSON.stringify(page)));
        }
        const { nextToken: _, ...rest } = request as Record<string, unknown>;
        const answer = await forward(req, Buffer.from(JSON.stringify({ ...rest, ...(real ? { nextToken: real } : {}) })));
        if (answer.status !== 200) return send(answer.status, answer.headers, answer.body);
        const page = JSON.parse(answer.body.toString()) as { events?: unknown[]; nextForwardToken?: string };
        // moto's end (its token unchanged, or no events) is the end: give back the token the client passed.
        if (page.nextForwardToken === real || !page.events?.length) page.nextForwardToken = passed ?? page.nextForwardToken;
        return send(200, { "content-type": "application/x-amz-json-1.1" }, Buffer.from(JSON.stringify(page)));
      } catch (err) {
        send(
          502,
          { "content-type": "application/x-amz-json-1.1" },
          Buffer.from(JSON.stringify({ __type: "ServiceUnavailableException", message: String(err) })),
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
