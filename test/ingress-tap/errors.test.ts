import { describe, it } from 'vitest';
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
import { expectDocumentedError } from '../support/error-codes.ts';

// The tap's error codes: what operators grep its logs for (test/support/error-codes.ts).
describe('tap errors', () => {
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
    expectDocumentedError(build, code);
  });
});
