// How big each part of the run is. The full plan must finish within BUDGET_S on a 2-core machine (the report quotes
// the run's wall time against it); the smoke plan only proves the harness still works end to end (tiny rates, one
// short round, a subset of scenarios).
//
// Where the full run's time went in the run of docs/benchmarks.md (2026-11-30, 1-min load 20-36 from other work;
// 969 s in all): start-up 22 s, warm-up 55 s, latency rounds 708 s (24 sweep cells × 3 rounds + 9 single-rate cells ×
// 2 rounds, 6 s each plus ~2.8 s of settling and vegeta encoding), uploads 55 s, throughput 110 s, isolation 18 s.
// The dispatcher memory soak is not part of `make bench` (see `make soak`) and is not budgeted here.

/** Wall-clock budget of a full `make bench`, seconds. */
export const BUDGET_S = 20 * 60;

export interface Plan {
  readonly smoke: boolean;
  /**
   * The latency-versus-offered-rate sweep: these scenarios run at every rate (req/s), each (scenario, rate) a cell
   * of its own in the rotation.
   */
  readonly sweep: { readonly scenarios: readonly string[]; readonly rates: readonly number[] };
  /** Offered rate of the GET scenarios outside the sweep, and the sweep rate the per-scenario tables show (req/s). */
  readonly rate: number;
  /** Offered rate of the body scenarios S0b and S8: bodies up to 1 MiB cost far more per request. */
  readonly bodyRate: number;
  readonly roundS: number;
  readonly rounds: number;
  /** The scenarios outside the sweep run in the first this-many rounds only (they are judged against S2 alone). */
  readonly singleRateRounds: number;
  readonly warmupS: number;
  /** Pause between parts, so sockets and queues of one settle before the next. */
  readonly pauseMs: number;
  readonly scenarios: readonly string[] | 'all';
  readonly throughputS: number;
  readonly throughputRounds: number;
  readonly throughputWorkers: number;
  readonly dispatcherEvents: number;
  readonly dispatcherConcurrency: number;
  readonly isolationEvents: number;
  readonly uploadWorkers: number;
  readonly uploadS: number;
}

export const FULL: Plan = {
  smoke: false,
  // X1 and X2 (bare fastify, no mirroring) give the knee of a Node forwardAuth server that does nothing: what S1's
  // Go responder has over any Node server on these machines, apart from the tap's own work.
  sweep: { scenarios: ['S0', 'S1', 'S2', 'S2h2', 'S7', 'S10', 'X1', 'X2'], rates: [250, 500, 1000, 2000] },
  rate: 1000,
  bodyRate: 200,
  roundS: 6,
  rounds: 3,
  singleRateRounds: 2,
  warmupS: 2,
  pauseMs: 1000,
  scenarios: 'all',
  throughputS: 6,
  // At least three, for a median and a spread.
  throughputRounds: 3,
  throughputWorkers: 32,
  dispatcherEvents: 10_000,
  dispatcherConcurrency: 16,
  isolationEvents: 4000,
  uploadWorkers: 256,
  uploadS: 8,
};

export const SMOKE: Plan = {
  smoke: true,
  sweep: { scenarios: ['S0', 'S1', 'S2', 'S2h2', 'S7', 'S10', 'X1', 'X2'], rates: [25, 50] },
  rate: 50,
  bodyRate: 10,
  roundS: 1,
  rounds: 1,
  singleRateRounds: 1,
  warmupS: 0,
  pauseMs: 100,
  scenarios: ['S0', 'S1', 'S2', 'S2h2', 'S4', 'S6', 'S7', 'S10', 'S0b', 'S8', 'S9', 'X1', 'X2'],
  throughputS: 1,
  throughputRounds: 1,
  throughputWorkers: 4,
  dispatcherEvents: 100,
  dispatcherConcurrency: 4,
  isolationEvents: 50,
  uploadWorkers: 4,
  uploadS: 1,
};
