// How big each part of the run is. The full plan fits ~15 minutes on a 2-core machine; the smoke plan only proves
// the harness still works end to end (tiny rates, one short round, a subset of scenarios).

export interface Plan {
  readonly smoke: boolean;
  /** Offered rate of the GET scenarios (req/s). */
  readonly rate: number;
  /** Offered rate of the body scenarios S0b and S8: bodies up to 1 MiB cost far more per request. */
  readonly bodyRate: number;
  readonly roundS: number;
  readonly rounds: number;
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
  rate: 2000,
  bodyRate: 200,
  roundS: 10,
  rounds: 3,
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
  rate: 50,
  bodyRate: 10,
  roundS: 1,
  rounds: 1,
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
