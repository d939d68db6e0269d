/**
 * IAM identity-policy evaluation, as far as it can be done from the policies
 * alone (pure). It follows AWS's "Policy evaluation logic"
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
 * an explicit Deny wins, then an Allow, else the request is implicitly
 * denied; actions match case-insensitively and resources case-sensitively,
 * both with the `*` and `?` wildcards, and NotAction / NotResource match
 * everything they do not list (reference_policies_elements_action.html,
 * _resource.html, _notaction.html, _notresource.html). A statement with a
 * Condition or a policy variable (`${aws:username}`) may or may not apply:
 * it makes the answer `conditional`, never a definite one.
 */

/** One statement of an IAM policy document, as IAM stores it. */
export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, unknown>;
}

/** An IAM policy document. */
export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

/** What the policies say of one request: allowed, explicitly denied, implicitly denied (nothing allows it), or it depends on a condition. */
export type Decision = "allow" | "deny" | "implicit" | "conditional";

const list = (value: string | string[] | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** A policy pattern with `*` and `?` as a regular expression over the whole value. */
function wildcard(pattern: string, ignoreCase: boolean): RegExp {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${source}$`, ignoreCase ? "is" : "s");
}

function matchesAny(patterns: string[], value: string, ignoreCase: boolean): boolean {
  return patterns.some((pattern) => wildcard(pattern, ignoreCase).test(value));
}

/** Does `statement` cover `action` on `resource`? `maybe` when only a policy variable in its resources could make it. */
function covers(statement: PolicyStatement, action: string, resource: string): boolean | "maybe" {
  const actionHit = statement.NotAction !== undefined ? !matchesAny(list(statement.NotAction), action, true) : matchesAny(list(statement.Action), action, true);
  if (!actionHit) return false;
  const patterns = list(statement.NotResource ?? statement.Resource);
  // A policy variable is filled in from the request: it may or may not match.
  const variable = patterns.some((pattern) => pattern.includes("${"));
  const plain = patterns.filter((pattern) => !pattern.includes("${"));
  const hit = statement.NotResource !== undefined ? !matchesAny(plain, resource, false) : matchesAny(plain, resource, false);
  if (variable) return hit && statement.NotResource === undefined ? true : "maybe";
  return hit;
}

/** What `documents` (every identity policy of a principal) decide for `action` on `resource`. */
export function evaluate(documents: readonly PolicyDocument[], action: string, resource: string): Decision {
  let allowed = false;
  let maybeAllowed = false;
  let maybeDenied = false;
  for (const document of documents) {
    for (const statement of Array.isArray(document.Statement) ? document.Statement : [document.Statement]) {
      const hit = covers(statement, action, resource);
      if (!hit) continue;
      const certain = hit === true && !statement.Condition;
      if (statement.Effect === "Deny") {
        if (certain) return "deny";
        maybeDenied = true;
      } else if (certain) {
        allowed = true;
      } else {
        maybeAllowed = true;
      }
    }
  }
  if (maybeDenied && (allowed || maybeAllowed)) return "conditional";
  if (allowed) return "allow";
  return maybeAllowed ? "conditional" : "implicit";
}
