/**
 * A Service Usage test server (there is no emulator): `services.get`, which
 * `doctor` asks whether the APIs a Vertex AI job needs are enabled. Its own file
 * beside the Vertex AI test server, accepting the bearer tokens that server's
 * token endpoint hands out (pass its `tokens`).
 *
 * As Google documents it (cloud.google.com/service-usage/docs/reference/rest/v1/services/get,
 * and .../rest/v1/services#Service): GET /v1/{name=*\/*\/services/*}, where name is
 * `projects/PROJECT_ID_OR_NUMBER/services/SERVICE` (e.g. aiplatform.googleapis.com);
 * the answer is a Service: `name` and `parent` with the project's number,
 * `config.name`, and `state` ENABLED or DISABLED. Without a valid token: 401
 * UNAUTHENTICATED; a project the caller cannot see: 403 PERMISSION_DENIED
 * (google.rpc.Status errors).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PROJECT_NUMBER } from "./vertex-fake.js";

/** A running Service Usage test server. */
export interface ServiceUsageFake {
  url: string;
  /** Per project id: the services enabled there. Others are DISABLED. */
  enabled: Map<string, Set<string>>;
  /** Every request's path, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** Start the server; `tokens` are the access tokens it accepts. */
export async function startServiceUsageFake(tokens: ReadonlySet<string>, enabled: Record<string, string[]>): Promise<ServiceUsageFake> {
  const state: ServiceUsageFake = {
    url: "",
    enabled: new Map(Object.entries(enabled).map(([project, services]) => [project, new Set(services)])),
    requests: [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const status = (res: http.ServerResponse, code: number, statusName: string, message: string): void => {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code, message, status: statusName } }));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    state.requests.push(url.pathname);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (!bearer || !tokens.has(bearer)) return status(res, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
    const match = /^\/v1\/projects\/([^/]+)\/services\/([^/]+)$/.exec(url.pathname);
    if (req.method !== "GET" || !match) return status(res, 404, "NOT_FOUND", `No method for ${req.method} ${url.pathname}.`);
    const [, project, service] = match as unknown as [string, string, string];
    const services = state.enabled.get(project) ?? (project === PROJECT_NUMBER ? [...state.enabled.values()][0] : undefined);
    if (!services) return status(res, 403, "PERMISSION_DENIED", `Permission denied to get service [${service}]`);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        name: `projects/${PROJECT_NUMBER}/services/${service}`,
        parent: `projects/${PROJECT_NUMBER}`,
        config: { name: service, title: service.split(".")[0] },
        state: services.has(service) ? "ENABLED" : "DISABLED",
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
