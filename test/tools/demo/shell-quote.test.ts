import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellCommand, shellQuote } from '../../../tools/demo/shell-quote.ts';

// The demo prints commands to paste into a shell; each word must reach the program as printed, whatever it holds.

const WORDS = [
  'http://app.localhost:8000/products?category=books&page=2',
  'session=abc123; theme=dark',
  '{"item":"book-42","quantity":2}',
  "it's",
  '$HOME `id` $(id) \\n',
  '*.example.com',
  'two  spaces\tand a tab',
  'line\nbreak',
  'résumé.pdf',
  '!event',
  '',
  '-X',
];

describe('shell quoting of the demo commands', () => {
  it.each(WORDS.map((w) => [JSON.stringify(w), w]))('passes %s through bash unchanged', (_name, word) => {
    const out = execFileSync('bash', ['-c', `printf '%s\\0' ${shellQuote(word)}`], { encoding: 'utf8' });
    expect(out).toBe(`${word}\0`);
  });

  it('keeps every word of a command a separate argument', () => {
    const out = execFileSync('bash', ['-c', `printf '%s\\0' ${shellCommand(WORDS)}`], { encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).toEqual(WORDS);
  });

  it('leaves plain words bare so the printed line stays readable', () => {
    expect(shellCommand(['curl', '-s', 'http://shop.localhost:8000/cart', '-X', 'PUT'])).toBe('curl -s http://shop.localhost:8000/cart -X PUT');
  });
});
