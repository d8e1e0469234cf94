import { describe, expect, it } from 'vitest';
import {
  AddressRefusedError,
  DeliveryFailedError,
  InvalidEventError,
  NatsConnectionLostError,
  NetworkPolicyInvalidError,
  TargetGoneError,
} from '../../dispatcher/errors.ts';
import { expectDocumentedError } from '../support/error-codes.ts';

// The dispatcher's error codes: what operators grep its logs for (test/support/error-codes.ts).
describe('dispatcher errors', () => {
  it.each([
    [() => new InvalidEventError('x'), 'RM_EVENT_INVALID'],
    [() => new AddressRefusedError('127.0.0.1', '127.0.0.1', 'loopback'), 'RM_ADDRESS_REFUSED'],
    [() => new NetworkPolicyInvalidError('x'), 'RM_NETWORK_POLICY_INVALID'],
    [() => new DeliveryFailedError('x', 'timeout'), 'RM_DELIVERY_FAILED'],
    [() => new TargetGoneError('x'), 'RM_TARGET_GONE'],
    [() => new NatsConnectionLostError('x'), 'RM_NATS_CONNECTION_LOST'],
  ])('error %# carries its documented code %s and its class name', (build, code) => {
    expectDocumentedError(build, code);
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
