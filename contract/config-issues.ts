import { isNode, LineCounter, type Document } from 'yaml';
import { z } from 'zod';

/**
 * Formats a config file's schema issues for a person: each issue as zod words it, then where it is, as the dotted
 * path (`targets[1].watchURL`) and the line and column in the YAML file, and the value found there when it is a
 * scalar (cut to 60 characters). A missing required key is called missing, and points at the mapping that lacks it.
 * An unknown key close to one that `schema` takes there (a typo: at most 2 edits, and under half the key) gets a
 * suggestion. Shape, one issue:
 *
 *     ✖ an absolute http:// or https:// URL
 *       → at targets[1].watchURL (line 9, column 15): "ftp://x"
 *
 * Issues are sorted by their line, so they read in file order.
 */
export function describeIssues(error: z.ZodError, doc: Document, lines: LineCounter, schema: z.ZodType): string {
  const placed = error.issues.map((issue) => {
    const { node, exact } = deepestNode(doc, issue.path);
    const offset = node?.range?.[0];
    return { issue, exact, node, offset: offset ?? Number.MAX_SAFE_INTEGER };
  });
  placed.sort((a, b) => a.offset - b.offset);
  return placed
    .map(({ issue, exact, node, offset }) => {
      const missing = !exact && issue.code === 'invalid_type';
      const out = [missing ? `✖ missing: required, ${issue.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, '')}` : `✖ ${issue.message}`];
      if (issue.path.length > 0) {
        const pos = offset === Number.MAX_SAFE_INTEGER ? '' : ` (line ${String(lines.linePos(offset).line)}, column ${String(lines.linePos(offset).col)})`;
        const found = exact && node && 'value' in node && !isNode(node.value) ? `: ${shown(node.value)}` : '';
        out.push(`  → at ${z.core.toDotPath(issue.path)}${pos}${found}`);
      }
      if (issue.code === 'unrecognized_keys') out.push(...suggestions(issue.keys, keysAt(schema, issue.path)));
      return out.join('\n');
    })
    .join('\n');
}

type Located = { range?: [number, number, number] | null; value?: unknown };

// The node at `path`, or, when the path goes past what the file has (a missing key), the deepest node on the way.
function deepestNode(doc: Document, path: readonly PropertyKey[]): { node: Located | null; exact: boolean } {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node)) return { node: node, exact: n === path.length };
  }
  return { node: null, exact: false };
}

function shown(value: unknown): string {
  // A YAML scalar: a string, number, boolean or null, so always JSON.
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

function suggestions(unknown: readonly string[], known: readonly string[]): string[] {
  return unknown.flatMap((key) => {
    const near = closest(key, known);
    if (near === undefined) return [];
    return [unknown.length === 1 ? `  did you mean "${near}"?` : `  did you mean "${near}" for "${key}"?`];
  });
}

// The keys an object schema takes at `path` (a numeric step goes into an array), or none. Unions are not walked:
// the config's unions carry an error of their own, which zod reports instead of their options' unknown keys.
function keysAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  const [step, ...rest] = path;
  if (schema instanceof z.ZodObject) {
    if (step === undefined) return Object.keys(schema.shape);
    const inner = (schema.shape as Record<PropertyKey, z.core.$ZodType | undefined>)[step];
    return inner === undefined ? [] : keysAt(inner, rest);
  }
  // An unknown key's path ends at an object, so a path never stops at an array.
  if (schema instanceof z.ZodArray) return keysAt(schema.element, rest);
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) return keysAt(schema.unwrap(), path);
  return [];
}

// The known key nearest to `key` in edits (optimal string alignment: insert, delete, replace, swap two neighbours;
// case ignored), when it is a likely typo: at most 2 edits, and fewer than half of the key's letters.
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= 2 && bestDistance * 2 < key.length ? best : undefined;
}

/**
 * Edits that turn `a` into `b`: insertions, deletions, replacements and swaps of two neighbouring characters, each
 * character edited at most once (optimal string alignment distance). Case counts; closest() lowers it first.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((d[i - 1]?.[j] ?? 0) + 1, (d[i]?.[j - 1] ?? 0) + 1, (d[i - 1]?.[j - 1] ?? 0) + cost);
      // A swap of neighbours; in the first row or column the character before is undefined and matches nothing.
      if (a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, (d[i - 2]?.[j - 2] ?? 0) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return d[a.length]?.[b.length] ?? 0;
}
