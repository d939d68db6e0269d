/**
 * The layering of src/ as its READMEs draw it, checked edge by edge: every
 * import of every source file (static, `export … from`, and `import()`) is
 * read with the TypeScript compiler and must be allowed by the rules below. A
 * new edge that breaks them fails here, naming the rule.
 *
 *   cli ─► jobs (lifecycle, records, spec building, fetch) ─► backends (registry, types) ─► backend folders
 *   everything below uses spec, package, storage and the base modules (errors, context, aws, exec, redact, order, text, version)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { REPO } from "../helpers/cli.js";
import { fileTimeLimit } from "../helpers/limit.js";

fileTimeLimit(3, import.meta.url);

const SRC = path.join(REPO, "src");

/** The layer a source file (relative to src/, with /) belongs to. */
function layerOf(file: string): string {
  const [top, second] = file.split("/");
  if (file === "index.ts") return "api";
  if (file === "fetch.ts") return "jobs";
  if (top === "backends") return second!.endsWith(".ts") ? "backends" : `backend:${second}`;
  if (["cli", "jobs", "spec", "package", "storage"].includes(top!)) return top!;
  return "base";
}

/** Layers each layer may import, and why (the rule a new edge is held to). */
const RULES: Record<string, { may: (target: string, file: string, importer: string) => boolean; rule: string }> = {
  api: { may: () => true, rule: "the public API may export anything" },
  cli: { may: (t) => !t.startsWith("backend:"), rule: "the CLI talks to the library (jobs, backends' table), never to one backend's folder" },
  jobs: {
    may: (t) => !t.startsWith("backend:") && t !== "cli",
    rule: "jobs own records and the lifecycle; they reach backends only through the table (registry) and their hooks",
  },
  backends: {
    may: (t, file) => t !== "cli" && (t !== "jobs" || JOB_NOUNS.has(file)),
    rule: "the backends' table and interface know the backend folders and the job's nouns, nothing above",
  },
  spec: { may: (t) => ["spec", "package", "storage", "base"].includes(t), rule: "the spec layer knows no backend: the table is passed in" },
  package: { may: (t) => ["package", "spec", "storage", "base"].includes(t), rule: "packaging knows no backend or job record" },
  storage: { may: (t) => ["storage", "base"].includes(t), rule: "storage knows only locations and archives" },
  base: { may: (t) => t === "base", rule: "the base modules import nothing of the project above them" },
};

/** The modules of jobs/ that read and write nothing: the job's record type and states, and job names. */
const JOB_NOUNS = new Set(["jobs/job.ts", "jobs/names.ts"]);

/** A backend folder: its own files, the backends' interface, and what lies below; of jobs/ only the job's nouns (jobs/job.ts), since only jobs/ writes records (the detached supervisor of `fit --detach` is jobs/ code too). */
function backendMay(importer: string, target: string, file: string): boolean {
  if (target === layerOf(importer)) return true;
  if (target.startsWith("backend:")) return false;
  if (target === "backends") return file !== "backends/registry.ts";
  if (target === "jobs") return JOB_NOUNS.has(file);
  return ["spec", "package", "storage", "base"].includes(target);
}

/** Every import of `file`'s source: its module specifiers, static and dynamic. */
function importsOf(text: string): string[] {
  const source = ts.createSourceFile("x.ts", text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      found.push(node.moduleSpecifier.text);
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0]))
      found.push(node.arguments[0].text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Every edge between project files: importer → imported, both relative to src/. */
function edges(): Array<{ from: string; to: string }> {
  const files = (fs.readdirSync(SRC, { recursive: true }) as string[]).filter((file) => file.endsWith(".ts")).map((file) => file.split(path.sep).join("/"));
  return files.flatMap((from) =>
    importsOf(fs.readFileSync(path.join(SRC, from), "utf8"))
      .filter((specifier) => specifier.startsWith("."))
      .map((specifier) => ({ from, to: path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier)).replace(/\.js$/, ".ts") })),
  );
}

test("every import in src/ follows the layering the READMEs draw", () => {
  const all = edges();
  assert.ok(all.length > 100, `the imports were read (${all.length})`);
  const broken = all
    .filter(({ from, to }) => {
      const importer = layerOf(from);
      const target = layerOf(to);
      if (importer.startsWith("backend:")) return !backendMay(from, target, to);
      return target !== importer && !RULES[importer]!.may(target, to, from);
    })
    .map(
      ({ from, to }) =>
        `${from} → ${to}: ${layerOf(from).startsWith("backend:") ? "a backend's folder talks to its provider with what lies below it; of jobs/ only the job's nouns and names (only jobs/ writes records), and never another backend" : RULES[layerOf(from)]!.rule}`,
    );
  assert.deepEqual(broken, []);
});

test("the layering rules themselves: a forbidden edge is caught", () => {
  assert.equal(backendMay("backends/sagemaker/index.ts", "jobs", "jobs/records.ts"), false, "a backend may not write records");
  assert.equal(backendMay("backends/local/run.ts", "jobs", "jobs/records.ts"), false, "not even the local one, whose detached runs jobs/' supervisor records");
  assert.equal(
    RULES.jobs!.may("backend:local", "backends/local/run.ts", "jobs/supervisor.ts"),
    false,
    "the supervisor reaches the local backend through the table",
  );
  assert.equal(backendMay("backends/sagemaker/index.ts", "backend:kaggle", "backends/kaggle/api.ts"), false, "nor reach into another backend");
  assert.equal(RULES.spec!.may("backends", "backends/registry.ts", "spec/build.ts"), false, "the spec layer knows no backend");
  assert.equal(RULES.jobs!.may("backend:sagemaker", "backends/sagemaker/role.ts", "jobs/init.ts"), false, "init reaches a backend through its hook");
  assert.deepEqual(importsOf('import a from "./a.js";\nexport { b } from "./b.js";\nconst c = await import("./c.js");\nimport type { D } from "./d.js";'), [
    "./a.js",
    "./b.js",
    "./c.js",
    "./d.js",
  ]);
});
