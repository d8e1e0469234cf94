import { Agent, request } from 'undici';

// A bounded, paced request loop against the tap's forwardAuth listener: `ratePerSecond` requests, each naming its
// sequence number in X-Forwarded-Uri (`/seq/<n>`) so the event a webhook receives says which request it mirrors.
// At most `maxInFlight` requests are open at once; beyond that the next ones wait, so the loop never piles up
// requests on a slow tap. `records` is exactly what was sent.

export interface SentRequest {
  readonly seq: number;
  /** Date.now() when the request was sent. */
  readonly sentAt: number;
  /** Time to the full answer in ms; -1 until it arrives. */
  latencyMs: number;
  /** HTTP status, or 0 for a network error. */
  status: number;
}

export interface SteadyLoad {
  readonly records: readonly SentRequest[];
  /** Requests answered (or failed) so far. */
  answered(): number;
  /** Stops sending and waits for every request in flight to finish. */
  stop(): Promise<void>;
}

export function startSteadyLoad(forwardAuthUrl: string, options: { ratePerSecond: number; maxInFlight?: number }): SteadyLoad {
  const agent = new Agent({ connections: options.maxInFlight ?? 16, keepAliveTimeout: 5000 });
  const records: SentRequest[] = [];
  const inFlight = new Set<Promise<void>>();
  const maxInFlight = options.maxInFlight ?? 16;
  const started = performance.now();
  let answered = 0;
  let stopped: Promise<void> | undefined;
  const sendOne = () => {
    const record: SentRequest = { seq: records.length, sentAt: Date.now(), latencyMs: -1, status: -1 };
    records.push(record);
    const t0 = performance.now();
    const done = request(`${forwardAuthUrl}/`, {
      dispatcher: agent,
      headers: { 'x-forwarded-uri': `/seq/${record.seq}`, 'x-forwarded-method': 'GET', 'x-forwarded-host': 'cluster.test' },
    })
      .then(async (res) => {
        await res.body.dump();
        record.status = res.statusCode;
      })
      .catch(() => {
        record.status = 0;
      })
      .finally(() => {
        record.latencyMs = performance.now() - t0;
        answered++;
        inFlight.delete(done);
      });
    inFlight.add(done);
  };
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * options.ratePerSecond);
    while (records.length < due && inFlight.size < maxInFlight) sendOne();
  }, 5);
  return {
    records,
    answered: () => answered,
    stop() {
      clearInterval(timer);
      stopped ??= Promise.all([...inFlight]).then(() => agent.close());
      return stopped;
    },
  };
}

/** The p-th percentile (0-100) of `values`, by nearest rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}
