import { LineCounter, parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Config } from '../../contract/config.ts';
import { describeIssues, editDistance } from '../../contract/config-issues.ts';

// How a config file's schema issues read to a person: zod's words, the dotted path, the line and column in the YAML
// file and the value found there. test/contract/config-file.test.ts checks them through loadConfig; here each rule.

function issues(text: string): string {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const parsed = Config.safeParse(doc.toJS() ?? {});
  if (parsed.success) throw new Error('expected the config to be refused');
  return describeIssues(parsed.error, doc, lines, Config);
}

const target = (extra: string) => `targets:\n  - name: a\n    watchURL: http://a.test/\n    methods: [GET]\n${extra}`;

describe('config issues', () => {
  it('calls a required key that is absent missing, pointing at the mapping that lacks it', () => {
    expect(issues('targets:\n  - name: a\n    watchURL: http://a.test/\n')).toBe('✖ missing: required, expected array\n  → at targets[0].methods (line 2, column 5)');
  });

  it("keeps zod's words for a key that is there with the wrong type, with the value found", () => {
    expect(issues('nats: 5\n')).toBe('✖ Invalid input: expected object, received number\n  → at nats (line 1, column 7): 5');
  });

  it('says which forms a signing secret takes when one matches neither, and keeps the inner issue when one does', () => {
    const expected = '✖ a signing secret source: { env: VARIABLE } or { file: PATH }, exactly one of them\n  → at targets[0].secrets[0] (line 5, column 15)';
    expect(issues(target('    secrets: [{ value: x }]\n'))).toBe(expected);
    expect(issues(target('    secrets: [{ env: A, file: B }]\n'))).toBe(expected);
    expect(issues(target('    secrets: [{ env: "" }]\n'))).toBe(
      '✖ Too small: expected string to have >=1 characters\n  → at targets[0].secrets[0].env (line 5, column 22): ""',
    );
  });

  it('suggests the key a likely typo meant, in a target, a listener, its TLS block and at the top level', () => {
    expect(issues(target('    cookeNames: [sid]\n'))).toBe('✖ Unrecognized key: "cookeNames"\n  → at targets[0] (line 2, column 5)\n  did you mean "cookieNames"?');
    // A swap of two neighbouring letters is one edit; case is ignored.
    expect(issues('tap:\n  forwardAuth:\n    hsot: 0.0.0.0\n')).toBe('✖ Unrecognized key: "hsot"\n  → at tap.forwardAuth (line 3, column 5)\n  did you mean "host"?');
    expect(issues('Targets: []\n')).toBe('✖ Unrecognized key: "Targets"\n  did you mean "targets"?');
    // Inside a block that is optional (a listener's tls).
    expect(issues('tap:\n  mirror:\n    tls: { certFil: a.pem, keyFile: a.key }\n')).toBe(
      '✖ missing: required, expected string\n  → at tap.mirror.tls.certFile (line 3, column 10)\n' +
        '✖ Unrecognized key: "certFil"\n  → at tap.mirror.tls (line 3, column 10)\n  did you mean "certFile"?',
    );
  });

  it('suggests nothing for a key too far from any known one, and names the key each suggestion is for when there are several', () => {
    expect(issues(target('    colour: blue\n'))).toBe('✖ Unrecognized key: "colour"\n  → at targets[0] (line 2, column 5)');
    // Two edits in a four-letter key is half of it: a guess, not a typo.
    expect(issues('tap:\n  forwardAuth:\n    hxsx: 0.0.0.0\n')).toBe('✖ Unrecognized key: "hxsx"\n  → at tap.forwardAuth (line 3, column 5)');
    expect(issues(target('    method: [GET]\n    colour: blue\n    timeoutMS: 5\n'))).toBe(
      '✖ Unrecognized keys: "method", "colour", "timeoutMS"\n  → at targets[0] (line 2, column 5)\n  did you mean "methods" for "method"?\n  did you mean "timeoutMs" for "timeoutMS"?',
    );
  });

  it('counts edits as insertions, deletions, replacements and swaps of neighbours, each character edited once', () => {
    expect([editDistance('', ''), editDistance('', 'abc'), editDistance('abc', ''), editDistance('host', 'host')]).toEqual([0, 3, 3, 0]);
    expect([editDistance('host', 'hosts'), editDistance('hosts', 'host'), editDistance('host', 'post'), editDistance('hsot', 'host')]).toEqual([1, 1, 1, 1]);
    expect([editDistance('abcd', 'badc'), editDistance('kitten', 'sitting'), editDistance('Host', 'host')]).toEqual([2, 3, 1]);
    // Optimal string alignment: a swapped pair is not edited again, so "ca" to "abc" takes 3, not 2.
    expect(editDistance('ca', 'abc')).toBe(3);
  });

  it('suggests up to 2 edits away, not 3, and the first of two equally near keys in the schema', () => {
    expect(issues(target('    cookieNms: [sid]\n'))).toContain('did you mean "cookieNames"?');
    expect(issues(target('    cokieNms: [sid]\n'))).not.toContain('did you mean');
    // "hort" is one edit from host and from port; host comes first in a listener.
    expect(issues('tap:\n  forwardAuth:\n    hort: 0.0.0.0\n')).toContain('did you mean "host"?');
  });

  it('names no place for an issue with the whole file', () => {
    expect(issues('- a\n- b\n')).toBe('✖ Invalid input: expected object, received array');
  });

  it('points at the top of the file for a key missing at the top level', () => {
    const lines = new LineCounter();
    const doc = parseDocument('nats: {}\n', { lineCounter: lines });
    const parsed = Config.extend({ required: z.string() }).safeParse(doc.toJS());
    if (parsed.success) throw new Error('expected a refusal');
    expect(describeIssues(parsed.error, doc, lines, Config)).toBe('✖ missing: required, expected string\n  → at required (line 1, column 1)');
  });

  it('names the path alone when the file is empty and has no node to point at', () => {
    const lines = new LineCounter();
    const doc = parseDocument('# nothing yet\n', { lineCounter: lines });
    const parsed = Config.extend({ required: z.string() }).safeParse(doc.toJS() ?? {});
    if (parsed.success) throw new Error('expected a refusal');
    expect(describeIssues(parsed.error, doc, lines, Config)).toBe('✖ missing: required, expected string\n  → at required');
  });

  it('shows a value of up to 60 characters whole and cuts a longer one to 59 and an ellipsis', () => {
    const at60 = `"${'x'.repeat(58)}"`;
    expect(issues(target(`    timeoutMs: ${at60}\n`))).toBe(`✖ Invalid input: expected number, received string\n  → at targets[0].timeoutMs (line 5, column 16): ${at60}`);
    expect(issues(target(`    timeoutMs: "${'y'.repeat(80)}"\n`))).toBe(
      `✖ Invalid input: expected number, received string\n  → at targets[0].timeoutMs (line 5, column 16): "${'y'.repeat(58)}…`,
    );
  });

  it('lists several issues in file order, each with its place', () => {
    expect(issues('targets:\n  - name: a\n    watchURL: ftp://x\n    methods: [GET]\nnats: 5\n').split('\n')).toEqual([
      '✖ an absolute http:// or https:// URL',
      '  → at targets[0].watchURL (line 3, column 15): "ftp://x"',
      '✖ Invalid input: expected object, received number',
      '  → at nats (line 5, column 7): 5',
    ]);
  });
});
