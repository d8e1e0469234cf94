import { isNode, LineCounter, type Document } from 'yaml';
import { z } from 'zod';

/**
 * Formats a config file's schema issues for a person: each issue as zod words it, then where it is, as the dotted
 * path (`targets[1].watchURL`) and the line and column in the YAML file, and the value found there when it is a
 * scalar (cut to 60 characters). A missing required key is called missing, and points at the mapping that lacks it. Shape, one issue:
 *
 *     ✖ an absolute http:// or https:// URL
 *       → at targets[1].watchURL (line 9, column 15): "ftp://x"
 *
 * Issues are sorted by their line, so they read in file order.
 */
export function describeIssues(error: z.ZodError, doc: Document, lines: LineCounter): string {
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
      if (issue.path.length === 0) return out.join('\n');
      const pos = offset === Number.MAX_SAFE_INTEGER ? '' : ` (line ${String(lines.linePos(offset).line)}, column ${String(lines.linePos(offset).col)})`;
      const found = exact && node && 'value' in node && !isNode(node.value) ? `: ${shown(node.value)}` : '';
      out.push(`  → at ${z.core.toDotPath(issue.path)}${pos}${found}`);
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
