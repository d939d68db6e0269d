/**
 * Loading the cloud SDKs (the AWS clients, Google's auth and storage
 * libraries), only when a command first needs one. They are CommonJS
 * packages, and Node 20 imports a CommonJS package into an ES module slowly:
 * it parses the entry file once to detect its format and again with
 * cjs-module-lexer to find its named exports, then compiles it. require()
 * compiles it once. Measured on this machine, loading the five AWS clients a
 * SageMaker submission uses took 0.75 to 0.99 s with import() and 0.33 to
 * 0.43 s with require().
 */
import { createRequire } from "node:module";

const requireHere = createRequire(import.meta.url);

/** The CommonJS package `name`, typed as `import("name")` types it. */
export function loadSdk<T>(name: string): T {
  return requireHere(name) as T;
}
