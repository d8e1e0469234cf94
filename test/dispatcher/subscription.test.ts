import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../dispatcher/metrics.ts';
import { subscribeEvents } from '../../dispatcher/subscription.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { startNatsCluster } from '../../tools/stack/nats-cluster.ts';
import { eventually, metric } from './harness.ts';
import { capturedLogger } from '../support/captured-logger.ts';

// The dispatcher's subscription on a real nats-server. Delivery through it is exercised by every harness test; here,
// what it does when the server refuses it (a NATS account whose permissions do not cover the events subject).

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('event subscription', () => {
  it('logs and counts a subscription the server refuses, naming the subject, and reports it as the problem', async () => {
    const cluster = await startNatsCluster({
      size: 1,
      extraConfig: ['authorization {', '  users: [ { user: "dispatcher", password: "pw", permissions: { subscribe: { deny: "denied.>" } } } ]', '}'],
    });
    cleanup.add(() => cluster.stop());
    const [node] = cluster.nodes;
    if (!node) throw new Error('one node');
    const nc = await connect({ servers: node.url, user: 'dispatcher', pass: 'pw' });
    cleanup.add(() => nc.close());
    const { logger, lines } = capturedLogger<{ msg: string; level: number; subject?: string; err?: { message?: string; code?: string } }>();
    const metrics = createMetrics();
    const problems: string[] = [];
    const sub = subscribeEvents(nc, { subjectPrefix: 'denied', queueGroup: 'dispatchers' }, { handle: () => undefined }, logger, {
      metrics,
      onProblem: (p) => void problems.push(p),
    });
    expect(lines.find((l) => l.msg === 'subscribed')).toMatchObject({ subject: 'denied.requests.>' });
    await eventually(() => lines.some((l) => l.msg === 'subscription refused; receiving nothing'), 10_000, 'the refusal to reach the subscription');
    expect(lines.find((l) => l.msg === 'subscription refused; receiving nothing')).toMatchObject({
      level: 50,
      subject: 'denied.requests.>',
      err: { code: 'RM_NATS_PERMISSION_DENIED', message: expect.stringMatching(/^the NATS server refused the subscription to denied\.requests\.> \(queue group dispatchers\): Permissions Violation/i) as unknown },
    });
    expect(await metric(metrics, 'request_mirror_dispatcher_nats_permission_denied_total')).toBe(1);
    expect(problems).toEqual([expect.stringContaining('refused the subscription to denied.requests.>')]);
    // nats.js closes a refused subscription: the dispatcher's readiness reads this.
    expect(sub.isClosed()).toBe(true);
  });
});
