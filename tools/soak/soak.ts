// What each of the three soaks provides to the run (run.ts): the processes whose memory is watched with the bound
// their configured limits put on it, the load it drives, and its accounting read back from the services' own
// counters once the load is over.

export const MiB = 1024 * 1024;

/**
 * What a Node.js service may add over its idle RSS whatever it holds: V8's young generation (semi-spaces of up to
 * 16 MiB each in Node 24 on 64-bit), old-space slack between major GCs and the allocator's arenas. Chosen, not
 * derived: the bound it yields is the design's, and the measured peak is printed next to it.
 */
export const NODE_RUNTIME_ALLOWANCE_MIB = 96;
/** The same for a Go process (Traefik): its heap may reach twice the live data (GOGC=100) plus stacks and buffers. */
export const GO_RUNTIME_ALLOWANCE_MIB = 64;

export interface Bound {
  /** Bytes the process may hold by its configured limits, MiB. */
  readonly heldMiB: number;
  /** How heldMiB follows from the config, for the report. */
  readonly derivation: string;
  readonly allowanceMiB: number;
}

export interface WatchedProcess {
  /** Unique across the run, e.g. `dispatcher (blackholed)`. */
  readonly name: string;
  readonly pid: number;
  /** /metrics of a Node service, for its V8 heap; none for Traefik. */
  readonly adminUrl?: string;
  readonly bound: Bound;
}

export interface Load {
  /** What was offered, e.g. `2000 events/s published to NATS`. */
  readonly offered: string;
  readonly sent: number;
  readonly achievedPerS: number;
  readonly unit: string;
  /** vegeta's answers by status (0: transport error), when the load was HTTP. */
  readonly statusCodes?: Readonly<Record<string, number>>;
  readonly command?: string;
}

export interface AccountingLine {
  readonly label: string;
  readonly value: number;
}

export interface Accounting {
  readonly lines: readonly AccountingLine[];
  /** Each identity the figures must satisfy, e.g. `received = delivered + dropped + pending`, and whether it holds. */
  readonly checks: readonly { readonly identity: string; readonly holds: boolean }[];
}

export interface SoakSetup {
  readonly id: string;
  readonly title: string;
  /** What runs and how it is configured, for the report. */
  readonly setup: string;
  readonly watched: readonly WatchedProcess[];
  /** Drives the load for `durationS`. */
  drive(durationS: number): Promise<Load>;
  /** Waits for what is in flight to settle (bounded), then reads the counters. */
  account(load: Load): Promise<Accounting>;
  stop(): Promise<void>;
}

export interface SoakContext {
  readonly dir: string;
  readonly natsUrl: string;
  readonly log: (line: string) => void;
}

export const mib = (bytes: number) => bytes / MiB;
