import { Writable } from 'node:stream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { subscribeEvents } from '../../dispatcher/subscription.ts';
import { Cleanup } from '../../tools/stack/cleanup.ts';
import { startNatsCluster } from '../../tools/stack/nats-cluster.ts';
import { eventually } from './harness.ts';

// The dispatcher's subscription on a real nats-server. Delivery through it is exercised by every harness test; here,
// what it does when the server refuses it (a NATS account whose permissions do not cover the events subject).

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('event subscription', () => {
  it('logs a subscription the server refuses, naming the subject', async () => {
    const cluster = await startNatsCluster({
      size: 1,
      extraConfig: ['authorization {', '  users: [ { user: "dispatcher", password: "pw", permissions: { subscribe: { deny: "denied.>" } } } ]', '}'],
    });
    cleanup.add(() => cluster.stop());
    const [node] = cluster.nodes;
    if (!node) throw new Error('one node');
    const nc = await connect({ servers: node.url, user: 'dispatcher', pass: 'pw' });
    cleanup.add(() => nc.close());
    const lines: { msg: string; subject?: string; err?: { message?: string } }[] = [];
    const logger = pino(
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
          done();
        },
      }),
    );
    subscribeEvents(nc, { subjectPrefix: 'denied', queueGroup: 'dispatchers' }, { handle: () => undefined }, logger);
    expect(lines.find((l) => l.msg === 'subscribed')).toMatchObject({ subject: 'denied.requests.>' });
    await eventually(() => lines.some((l) => l.msg === 'subscription error'), 10_000, 'the refusal to reach the subscription');
    expect(lines.find((l) => l.msg === 'subscription error')).toMatchObject({ subject: 'denied.requests.>', err: { message: expect.stringMatching(/Permissions Violation/i) as unknown } });
  });
});
