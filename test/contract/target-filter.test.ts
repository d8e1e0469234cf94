import { describe, expect, it } from 'vitest';
import { targetWants, type RequestKey } from '../../contract/target-filter.ts';

// The one rule both services apply: the tap to skip requests no target wants, the dispatcher to route. Through the
// running services in test/ingress-tap/capture-policy.test.ts and test/dispatcher/routing.test.ts.

const req = (method: string, host: string, path: string): RequestKey => ({ method, host, path });
const target = (methods: string[], hosts: string[] = [], pathPrefixes: string[] = []) => ({ methods, hosts, pathPrefixes });

describe('target filter', () => {
  it('takes every method with *, and otherwise only the methods listed, case and all', () => {
    expect(targetWants(target(['*']), req('PROPFIND', 'a.example', '/'))).toBe(true);
    expect(targetWants(target(['GET', 'POST']), req('POST', 'a.example', '/'))).toBe(true);
    expect(targetWants(target(['GET', 'POST']), req('PUT', 'a.example', '/'))).toBe(false);
    expect(targetWants(target(['GET']), req('get', 'a.example', '/'))).toBe(false);
    expect(targetWants(target([]), req('GET', 'a.example', '/'))).toBe(false);
  });

  it('takes every host when none is listed, an exact host, and subdomains only for a *. pattern', () => {
    expect(targetWants(target(['*']), req('GET', 'anything.example', '/'))).toBe(true);
    expect(targetWants(target(['*'], ['api.example.com']), req('GET', 'api.example.com', '/'))).toBe(true);
    expect(targetWants(target(['*'], ['api.example.com']), req('GET', 'www.api.example.com', '/'))).toBe(false);
    expect(targetWants(target(['*'], ['api.example.com']), req('GET', 'api.example.co', '/'))).toBe(false);
    expect(targetWants(target(['*'], ['*.shop.example']), req('GET', 'eu.shop.example', '/'))).toBe(true);
    expect(targetWants(target(['*'], ['*.shop.example']), req('GET', 'a.b.shop.example', '/'))).toBe(true);
    // The pattern's dot is part of it: neither the bare domain nor a name that merely ends the same way matches.
    expect(targetWants(target(['*'], ['*.shop.example']), req('GET', 'shop.example', '/'))).toBe(false);
    expect(targetWants(target(['*'], ['*.shop.example']), req('GET', 'myshop.example', '/'))).toBe(false);
    expect(targetWants(target(['*'], ['other.example', '*.shop.example']), req('GET', 'eu.shop.example', '/'))).toBe(true);
  });

  it('takes every path when no prefix is listed, and otherwise paths starting with one of them', () => {
    expect(targetWants(target(['*'], [], ['/v1/', '/admin']), req('GET', 'a.example', '/v1/orders'))).toBe(true);
    expect(targetWants(target(['*'], [], ['/v1/', '/admin']), req('GET', 'a.example', '/admin-panel'))).toBe(true);
    expect(targetWants(target(['*'], [], ['/v1/', '/admin']), req('GET', 'a.example', '/v2/orders'))).toBe(false);
    expect(targetWants(target(['*'], [], ['/v1/']), req('GET', 'a.example', '/v1'))).toBe(false);
  });

  it('wants a request only when method, host and path all match', () => {
    const t = target(['POST'], ['api.example.com'], ['/v1/']);
    expect(targetWants(t, req('POST', 'api.example.com', '/v1/x'))).toBe(true);
    expect(targetWants(t, req('GET', 'api.example.com', '/v1/x'))).toBe(false);
    expect(targetWants(t, req('POST', 'other.example.com', '/v1/x'))).toBe(false);
    expect(targetWants(t, req('POST', 'api.example.com', '/v2/x'))).toBe(false);
  });
});
