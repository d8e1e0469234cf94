import { describe, expect, it } from 'vitest';
import { canonicalHost } from '../../contract/host.ts';

// The tap's own reading of a Host value, pinned case by case; what Traefik routes for each spelling is driven
// through real Traefik in test/e2e/host-spellings.test.ts.
describe('canonicalHost (unit: the tap\'s own parsing)', () => {
  it.each([
    ['app.example.com', 'app.example.com'],
    ['APP.Example.COM', 'app.example.com'],
    ['app.example.com:8080', 'app.example.com'],
    ['app.example.com:', 'app.example.com'],
    ['app.example.com.', 'app.example.com'],
    ['app.example.com.:443', 'app.example.com'],
    [' app.example.com ', 'app.example.com'],
    ['[::1]', '::1'],
    ['[::1]:8080', '::1'],
    ['[2001:DB8::1]:443', '2001:db8::1'],
    ['::1', '::1'],
    ['a:b:c', 'a:b:c'],
    ['[::1', '[::1'],
    // What Go's net.SplitHostPort refuses is kept whole: text between ] and the port, a second [.
    ['[::1]x:80', '[::1]x:80'],
    ['[[::1]:80', '[[::1]:80'],
    ['[]:80', ''],
    ['', ''],
    ['.', ''],
  ])('reads %j as %j', (value, want) => {
    expect(canonicalHost(value)).toBe(want);
  });
});
