import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RequestMirrorError } from '../../contract/errors.ts';
import {
  BuildQueueFullError,
  EventTooLargeError,
  ListenFailedError,
  NatsDisconnectedError,
  PendingBytesExceededError,
  PluginBatchInvalidError,
  PublishFailedError,
  RejectedInputError,
  TlsUnusableError,
} from '../../ingress-tap/errors.ts';

// The codes are what operators grep the tap's logs for; docs/errors.md is where they look them up.
const documented = [...readFileSync(join(import.meta.dirname, '../../docs/errors.md'), 'utf8').matchAll(/^\| `(RM_[A-Z_]+)` \|/gm)].map((m) => m[1]);

describe('tap errors', () => {
  // Built inside the test: an error built while the file is collected escapes a mutant switched on per test.
  it.each([
    [() => new PublishFailedError('x'), 'RM_TAP_PUBLISH_FAILED'],
    [() => new NatsDisconnectedError('x'), 'RM_TAP_NATS_DISCONNECTED'],
    [() => new PendingBytesExceededError('x'), 'RM_TAP_PENDING_BYTES_EXCEEDED'],
    [() => new BuildQueueFullError('x'), 'RM_TAP_BUILD_QUEUE_FULL'],
    [() => new EventTooLargeError('x'), 'RM_TAP_EVENT_TOO_LARGE'],
    [() => new RejectedInputError('x'), 'RM_TAP_REJECTED_INPUT'],
    [() => new ListenFailedError('x'), 'RM_TAP_LISTEN_FAILED'],
    [() => new TlsUnusableError('x'), 'RM_TAP_TLS_UNUSABLE'],
    [() => new PluginBatchInvalidError('x'), 'RM_TAP_PLUGIN_BATCH_INVALID'],
  ])('error %# carries its documented code %s and its class name', (build, code) => {
    const error = build();
    expect(error).toBeInstanceOf(RequestMirrorError);
    expect(error.code).toBe(code);
    expect(documented).toContain(code);
    expect(error.name).toBe(error.constructor.name);
  });
});
