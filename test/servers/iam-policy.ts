/**
 * The test servers' own reading of IAM identity policies, written apart from
 * src/backends/sagemaker/policy.ts so a misreading there is not shared here.
 * From AWS's "Policy evaluation logic"
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
 * an explicit Deny overrides any Allow; without an Allow the request is
 * implicitly denied. Action names match without regard to case, resource
 * ARNs with it; `*` matches any run of characters and `?` one
 * (reference_policies_elements_action.html, reference_policies_elements_resource.html);
 * NotAction / NotResource match what they do not list. Statements with a
 * Condition are not evaluated here: the tests write none, and a role the
 * fake cannot judge is refused loudly rather than guessed at.
 */

type Statement = { Effect: string; Action?: unknown; NotAction?: unknown; Resource?: unknown; NotResource?: unknown; Condition?: unknown };

function globToRegExp(glob: string, caseless: boolean): RegExp {
  let source = "";
  for (const char of glob) source += char === "*" ? ".*" : char === "?" ? "." : char.replace(/[.+^${}()|[\]\\/-]/g, "\\$&");
  return new RegExp(`^${source}$`, caseless ? "is" : "s");
}

const strings = (value: unknown): string[] => (value === undefined ? [] : ([] as unknown[]).concat(value).map(String));

function element(statement: Statement, name: "Action" | "Resource", value: string): boolean {
  const caseless = name === "Action";
  const negated = statement[`Not${name}`];
  if (negated !== undefined) return !strings(negated).some((glob) => globToRegExp(glob, caseless).test(value));
  return strings(statement[name]).some((glob) => globToRegExp(glob, caseless).test(value));
}

/** Does the set of policy documents allow `action` on `resource`? Throws on a statement with a Condition that would decide it. */
export function policiesAllow(documents: ReadonlyArray<{ Statement: unknown }>, action: string, resource: string): boolean {
  let allowed = false;
  for (const document of documents) {
    for (const statement of ([] as Statement[]).concat(document.Statement as Statement)) {
      if (!element(statement, "Action", action) || !element(statement, "Resource", resource)) continue;
      if (statement.Condition !== undefined) throw new Error(`the test IAM evaluator does not evaluate Conditions (${JSON.stringify(statement)})`);
      if (statement.Effect === "Deny") return false;
      if (statement.Effect === "Allow") allowed = true;
    }
  }
  return allowed;
}
