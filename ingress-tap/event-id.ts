import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

// Event ids: ULIDs, monotonic within this tap, whose time part is the moment the tap saw the request. ulid's
// default generator asks the OS for one random byte at a time (sixteen calls per new millisecond); drawing from
// a pool refilled 4 KiB at a time keeps that off the request path.

const POOL_BYTES = 4096;

export function createEventIdFactory(): (time: number) => string {
  const pool = new Uint8Array(POOL_BYTES);
  let next = POOL_BYTES;
  const ulid = monotonicFactory(() => {
    if (next === POOL_BYTES) {
      randomFillSync(pool);
      next = 0;
    }
    return (pool[next++] as number) / 256;
  });
  return (time) => ulid(time);
}
