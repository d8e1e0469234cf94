// Commands the demo prints for the user to paste: each argument quoted for a POSIX shell (bash, zsh, dash), so that
// `&`, `;`, `?`, `*`, spaces and quotes in URLs, headers and bodies reach the program unchanged.

const SAFE = /^[\w@%+=:,./-]+$/;

/** `word` as one shell word: unchanged when nothing in it is special, else in single quotes. */
export function shellQuote(word: string): string {
  if (SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
