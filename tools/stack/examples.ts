import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backends } from './stack.ts';

// The Traefik snippets under docs/examples/ name the services as docker-compose.yml does (ingress-tap, upstream).
// Tests and the demo load them into a real Traefik with only those addresses changed to loopback ones.

export const EXAMPLES_DIR = join(import.meta.dirname, '..', '..', 'docs', 'examples');

export function readExample(name: string): string {
  return readFileSync(join(EXAMPLES_DIR, name), 'utf8');
}

export function localizeExample(text: string, b: Backends): string {
  const out = text
    .replaceAll('https://ingress-tap:8080/', b.tapForwardAuthUrl)
    .replaceAll('http://ingress-tap:8080/', b.tapForwardAuthUrl)
    .replaceAll('https://ingress-tap:8081', b.tapMirrorUrl)
    .replaceAll('http://ingress-tap:8081', b.tapMirrorUrl)
    .replaceAll('http://ingress-tap:8082', b.tapPluginUrl)
    .replaceAll('http://upstream:8080', b.upstreamUrl);
  if (/ingress-tap:|upstream:8080/.test(out)) throw new Error('an example names an address localizeExample does not know');
  return out;
}
