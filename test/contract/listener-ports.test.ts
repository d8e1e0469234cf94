import { describe, expect, it } from 'vitest';
import { portClashes } from '../../contract/listener-ports.ts';

// Which tap listeners the schema refuses as sharing a port (contract/listener-ports.ts): the tap would exit at
// start-up with RM_TAP_LISTEN_FAILED otherwise.

const clashOf = (a: string, b: string, portA = 7000, portB = 7000) =>
  portClashes([
    ['first', { host: a, port: portA }],
    ['second', { host: b, port: portB }],
  ]);

describe('listener ports', () => {
  it.each([
    ['the same address', '127.0.0.1', '127.0.0.1'],
    ['0.0.0.0 and an address', '0.0.0.0', '127.0.0.1'],
    ['an address and 0.0.0.0', '10.1.2.3', '0.0.0.0'],
    [':: and an IPv4 address (a dual-stack bind)', '::', '127.0.0.1'],
    ['[::] and ::1', '[::]', '::1'],
    ['another spelling of ::', '0:0::0', '192.0.2.1'],
    ['another spelling of ::1', '0:0:0:0:0:0:0:1', '::1'],
    ['localhost and 127.0.0.1', 'localhost', '127.0.0.1'],
    ['localhost and ::1', 'LOCALHOST', '::1'],
    ['one host name in two cases', 'Tap.Example', 'tap.example'],
  ])('finds %s on one port overlapping', (_what, a, b) => {
    expect(clashOf(a, b)).toEqual([{ name: 'second', listener: { host: b, port: 7000 }, takenBy: 'first', takenByHost: a }]);
  });

  it.each([
    ['two addresses', '127.0.0.1', '127.0.0.2'],
    ['an IPv4 and an IPv6 address', '127.0.0.1', '::1'],
    ['two host names', 'tap-a.example', 'tap-b.example'],
  ])('lets %s share a port', (_what, a, b) => {
    expect(clashOf(a, b)).toEqual([]);
  });

  it('lets every listener ask for port 0, and two ports differ', () => {
    expect(clashOf('0.0.0.0', '0.0.0.0', 0, 0)).toEqual([]);
    expect(clashOf('0.0.0.0', '0.0.0.0', 7000, 7001)).toEqual([]);
  });

  it('names each later listener once, against the first one that takes its port', () => {
    const clashes = portClashes([
      ['forwardAuth', { host: '0.0.0.0', port: 7000 }],
      ['mirror', { host: '127.0.0.1', port: 7000 }],
      ['plugin', { host: '127.0.0.2', port: 7000 }],
      ['admin', { host: '127.0.0.1', port: 7001 }],
    ]);
    expect(clashes.map((c) => [c.name, c.takenBy])).toEqual([
      ['mirror', 'forwardAuth'],
      ['plugin', 'forwardAuth'],
    ]);
  });
});
