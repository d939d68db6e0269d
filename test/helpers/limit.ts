/**
 * Every test file has a time limit well under CI's 90 minutes, so a hang fails
 * that file at once, with its name, instead of running out CI's clock. Each
 * test file calls `fileTimeLimit` first (test/unit/limits.test.ts checks that
 * every one does). Node's own `--test-timeout` applies to a whole file when
 * files run side by side, so `npm test` sets it to the same 30 minutes.
 */
import path from "node:path";

/** End this test file's process, failing, if it still runs `minutes` after it started. */
export function fileTimeLimit(minutes: number, file: string): void {
  const timer = setTimeout(() => {
    console.error(`\n${path.basename(file)} ran past its time limit of ${minutes} minutes: a test hangs. Failing the file.`);
    process.exit(124);
  }, minutes * 60_000);
  timer.unref(); // a file that finished in time is not kept alive by its limit
}
