/**
 * Google's published API descriptions (discovery documents), as the Google
 * test servers check requests against them. They ship inside the
 * google-api-python-client wheel (googleapiclient/discovery_cache/documents/),
 * which the machine's pip index serves; they are downloaded at test time into
 * the test cache, never committed.
 *
 * `checkBody` is strict where Google's JSON mapping of protobuf is strict
 * (developers.google.com/discovery/v1/type-format and
 * protobuf.dev/programming-guides/json): an unknown field is refused (the
 * API answers 400 "Invalid JSON payload received. Unknown name"), as are a
 * wrong type, an int64 that is not a decimal string, an enum value the
 * description does not list, a google-duration not of the form "3600s", and a
 * field the description marks readOnly (output only, which a create ignores:
 * a client that sends one has misread the API).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/** One property or schema of a discovery document. */
export interface DiscoverySchema {
  id?: string;
  type?: string;
  format?: string;
  $ref?: string;
  enum?: string[];
  readOnly?: boolean;
  properties?: Record<string, DiscoverySchema>;
  additionalProperties?: DiscoverySchema;
  items?: DiscoverySchema;
}

/** A discovery document: its schemas by id, and the rest kept as JSON. */
export interface DiscoveryDocument {
  name: string;
  version: string;
  revision: string;
  schemas: Record<string, DiscoverySchema>;
  resources: Record<string, unknown>;
}

/** The documents the Google test servers use. */
export const DOCUMENTS = ["aiplatform.v1", "logging.v2", "artifactregistry.v1", "storage.v1"] as const;

/**
 * The folder holding the documents under `cacheDir`, downloading the wheel
 * with pip and extracting just those files (with Python's zipfile, since pip
 * brings Python) the first time.
 */
export function discoveryFolder(cacheDir: string): string {
  const folder = path.join(cacheDir, "google-discovery");
  if (DOCUMENTS.every((name) => fs.existsSync(path.join(folder, `${name}.json`)))) return folder;
  const download = fs.mkdtempSync(path.join(cacheDir, "google-wheel-"));
  try {
    const pip = spawnSync("python3", ["-m", "pip", "download", "--no-deps", "--quiet", "-d", download, "google-api-python-client"], { encoding: "utf8" });
    if (pip.status !== 0) throw new Error(`pip download google-api-python-client failed: ${pip.stderr}`);
    const wheel = fs.readdirSync(download).find((file) => file.endsWith(".whl"));
    if (!wheel) throw new Error(`pip download left no wheel in ${download}`);
    fs.mkdirSync(folder, { recursive: true });
    // Extracted beside the wheel, then renamed into place: test files run in parallel, and a reader must never see half a document.
    const extract = spawnSync(
      "python3",
      [
        "-c",
        "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor name in sys.argv[3:]:\n    open(sys.argv[2] + '/' + name + '.json', 'wb').write(z.read('googleapiclient/discovery_cache/documents/' + name + '.json'))",
        path.join(download, wheel),
        download,
        ...DOCUMENTS,
      ],
      { encoding: "utf8" },
    );
    if (extract.status !== 0) throw new Error(`extracting the discovery documents failed: ${extract.stderr}`);
    for (const name of DOCUMENTS) fs.renameSync(path.join(download, `${name}.json`), path.join(folder, `${name}.json`));
  } finally {
    fs.rmSync(download, { recursive: true, force: true });
  }
  return folder;
}

/** The discovery document `name` (like "aiplatform.v1"), from the cache. */
export function loadDocument(cacheDir: string, name: (typeof DOCUMENTS)[number]): DiscoveryDocument {
  return JSON.parse(fs.readFileSync(path.join(discoveryFolder(cacheDir), `${name}.json`), "utf8")) as DiscoveryDocument;
}

/** A method of a document by its id (like "aiplatform.projects.locations.customJobs.create"). */
export function findMethod(
  doc: DiscoveryDocument,
  id: string,
): { httpMethod: string; path: string; request?: { $ref: string }; parameters: Record<string, { pattern?: string }> } | undefined {
  const visit = (resources: Record<string, unknown>): ReturnType<typeof findMethod> => {
    for (const resource of Object.values(resources) as Array<{ methods?: Record<string, { id: string }>; resources?: Record<string, unknown> }>) {
      for (const method of Object.values(resource.methods ?? {})) if (method.id === id) return method as unknown as ReturnType<typeof findMethod>;
      const inner = resource.resources ? visit(resource.resources) : undefined;
      if (inner) return inner;
    }
    return undefined;
  };
  return visit(doc.resources);
}

const INT64 = /^-?\d+$/;
const UINT64 = /^\d+$/;
const DURATION = /^-?\d+(\.\d{1,9})?s$/;
const DATETIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

/** Every way `value` breaks schema `schemaId` of `doc`, each naming its field's path; empty when it is a valid request body. */
export function checkBody(doc: DiscoveryDocument, schemaId: string, value: unknown): string[] {
  const problems: string[] = [];
  const check = (schema: DiscoverySchema, value: unknown, at: string): void => {
    if (schema.$ref) {
      const target = doc.schemas[schema.$ref];
      if (!target) throw new Error(`${doc.name}: no schema ${schema.$ref}`);
      return check(target, value, at);
    }
    if (value === null) return void problems.push(`${at}: null is not a value`);
    switch (schema.type) {
      case "object": {
        if (typeof value !== "object" || Array.isArray(value)) return void problems.push(`${at}: expected an object, got ${JSON.stringify(value)}`);
        for (const [key, item] of Object.entries(value)) {
          const field = schema.properties?.[key];
          const where = at ? `${at}.${key}` : key;
          if (field) {
            if (field.readOnly) problems.push(`${where}: output only (readOnly), not part of a request`);
            else check(field, item, where);
          } else if (schema.additionalProperties) check(schema.additionalProperties, item, where);
          else problems.push(`${where}: unknown field of ${schema.id ?? "the object"}`);
        }
        return;
      }
      case "array":
        if (!Array.isArray(value)) return void problems.push(`${at}: expected an array, got ${JSON.stringify(value)}`);
        value.forEach((item, index) => check(schema.items!, item, `${at}[${index}]`));
        return;
      case "string":
        if (typeof value !== "string")
          return void problems.push(`${at}: expected a string${schema.format ? ` (${schema.format})` : ""}, got ${JSON.stringify(value)}`);
        if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${schema.enum.join(", ")}`);
        if (schema.format === "int64" && !INT64.test(value)) problems.push(`${at}: ${JSON.stringify(value)} is not an int64 (a decimal string)`);
        if (schema.format === "uint64" && !UINT64.test(value)) problems.push(`${at}: ${JSON.stringify(value)} is not a uint64 (a decimal string)`);
        if (schema.format === "google-duration" && !DURATION.test(value)) problems.push(`${at}: ${JSON.stringify(value)} is not a duration (like "3600s")`);
        if (schema.format === "google-datetime" && !DATETIME.test(value)) problems.push(`${at}: ${JSON.stringify(value)} is not an RFC 3339 time`);
        if (schema.format === "byte" && !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) problems.push(`${at}: ${JSON.stringify(value)} is not base64`);
        return;
      case "integer":
        if (typeof value !== "number" || !Number.isInteger(value)) return void problems.push(`${at}: expected an integer, got ${JSON.stringify(value)}`);
        if (schema.format === "int32" && (value < -(2 ** 31) || value >= 2 ** 31)) problems.push(`${at}: ${value} is outside int32`);
        if (schema.format === "uint32" && (value < 0 || value >= 2 ** 32)) problems.push(`${at}: ${value} is outside uint32`);
        return;
      case "number":
        if (typeof value !== "number") problems.push(`${at}: expected a number, got ${JSON.stringify(value)}`);
        return;
      case "boolean":
        if (typeof value !== "boolean") problems.push(`${at}: expected true or false, got ${JSON.stringify(value)}`);
        return;
      case "any":
        return;
      default:
        throw new Error(`${doc.name}: schema type ${schema.type} at ${at} is not handled`);
    }
  };
  const root = doc.schemas[schemaId];
  if (!root) throw new Error(`${doc.name} has no schema ${schemaId}`);
  check(root, value, "");
  return problems;
}
