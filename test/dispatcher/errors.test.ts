import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RequestMirrorError } from '../../contract/errors.ts';
import {
  AddressRefusedError,
  DeliveryFailedError,
  InvalidEventError,
  NatsConnectionLostError,
  NetworkPolicyInvalidError,
  TargetGoneError,
} from '../../dispatcher/errors.ts';

// The codes are what operators grep logs for; docs/errors.md is where they look them up.
const documented = [...readFileSync(join(import.meta.dirname, '../../docs/errors.md'), 'utf8').matchAll(/^\| `(RM_[A-Z_]+)` \|/gm)].map((m) => m[1]);

describe('dispatcher errors', () => {
  // Built inside the test, not in the table: an error built while the file is collected escapes a mutant that is
  // switched on per test (make mutate), so its code would go unchecked.
  it.each([
    [() => new InvalidEventError('x'), 'RM_EVENT_INVALID'],
    [() => new AddressRefusedError('127.0.0.1', '127.0.0.1', 'loopback'), 'RM_ADDRESS_REFUSED'],
    [() => new NetworkPolicyInvalidError('x'), 'RM_NETWORK_POLICY_INVALID'],
    [() => new DeliveryFailedError('x', 'timeout'), 'RM_DELIVERY_FAILED'],
    [() => new TargetGoneError('x'), 'RM_TARGET_GONE'],
    [() => new NatsConnectionLostError('x'), 'RM_NATS_CONNECTION_LOST'],
  ])('error %# carries its documented code %s and its class name', (build, code) => {
    const error = build();
    expect(error).toBeInstanceOf(RequestMirrorError);
    expect(error.code).toBe(code);
    expect(documented).toContain(code);
    expect(error.name).toBe(error.constructor.name);
  });

  it('names the refused address, the host it came from when DNS gave it, the reason and the setting that allows it', () => {
    const literal = new AddressRefusedError('127.0.0.1', '127.0.0.1', '127.0.0.1 is this host', 'dispatcher.network.allowLoopback');
    expect(literal.message).toBe('refusing to connect to 127.0.0.1: 127.0.0.1 is this host; dispatcher.network.allowLoopback allows it');
    expect(literal).toMatchObject({ address: '127.0.0.1', setting: 'dispatcher.network.allowLoopback' });
    const resolved = new AddressRefusedError('10.0.0.1', 'hooks.test', '10.0.0.1 is denied');
    expect(resolved.message).toBe('refusing to connect to 10.0.0.1 (resolved from hooks.test): 10.0.0.1 is denied; no setting allows it');
    expect(resolved).toMatchObject({ address: '10.0.0.1', setting: undefined });
  });

  it('keeps the reason, the status and the cause of a failed delivery', () => {
    const cause = new Error('socket hang up');
    const error = new DeliveryFailedError('HTTP 503', 'http_5xx', 503, { cause });
    expect(error).toMatchObject({ message: 'HTTP 503', reason: 'http_5xx', status: 503, cause });
    expect(new DeliveryFailedError('timed out', 'timeout').status).toBeUndefined();
  });
});
