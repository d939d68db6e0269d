/** `alekseylearn doctor`: one line per check, ✓ or ✗ with the fix. */
import { doctor } from "../../jobs/doctor.js";
import type { CommandRun } from "../commands.js";

export const run: CommandRun = async (args, ctx, output) => {
  const report = await doctor(ctx, {
    ...(typeof args.options.backend === "string" ? { backend: args.options.backend } : {}),
    config: args.families.config ?? {},
  });
  if (args.options.json) {
    output.out(JSON.stringify(report, null, 2) + "\n");
    return report.failed ? 1 : 0;
  }
  const mark = { ok: "✓", fail: "✗", skip: "-" } as const;
  let shown = "";
  for (const check of report.checks) {
    if (check.backend !== shown) output.out(`${shown ? "\n" : ""}${check.backend}:\n`);
    shown = check.backend;
    output.out(`  ${mark[check.status]} ${check.check}: ${check.detail}\n`);
    if (check.status !== "ok" && check.fix) output.out(`      fix: ${check.fix}\n`);
  }
  const failures = report.checks.filter((check) => check.status === "fail");
  if (!failures.length) output.out("\nEverything checked is ready.\n");
  else if (report.failed) output.out(`\n${failures.length} check${failures.length === 1 ? "" : "s"} failed, ${report.backend}'s among them.\n`);
  else
    output.out(
      `\n${failures.length} check${failures.length === 1 ? "" : "s"} failed, none of the ${report.backend} backend's (\`--backend NAME\` makes a backend's count).\n`,
    );
  return report.failed ? 1 : 0;
};
