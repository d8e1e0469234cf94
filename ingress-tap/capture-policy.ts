import { REDACTED_BY_DEFAULT as REDACTED_HEADER_NAMES, type Config, type Target } from '../contract/config.ts';
import { targetWants, type RequestKey } from '../contract/target-filter.ts';

// What the tap keeps of one request: the union of what the targets that want it may receive. The dispatcher
// narrows it per target; the tap never captures more than some wanting target is allowed to see.

/** Headers that carry credentials; left out of a snapshot unless a wanting target reveals them. */
export const REDACTED_BY_DEFAULT: ReadonlySet<string> = new Set(REDACTED_HEADER_NAMES);

const MAX_CACHED_DECISIONS = 1024;

export interface CaptureDecision {
  /** Body bytes to keep; 0 leaves the body out. */
  readonly bodyLimit: number;
  readonly cookieNames: ReadonlySet<string>;
  readonly revealHeaders: ReadonlySet<string>;
}

export interface CapturePolicy {
  readonly subjectPrefix: string;
  /** Null when no target wants the request. */
  decide(key: RequestKey): CaptureDecision | null;
}

export function capturePolicy(config: Pick<Config, 'targets' | 'tap' | 'nats'>): CapturePolicy {
  const targets = config.targets;
  const tapLimit = config.tap.maxBodyBytes;
  // Most requests are wanted by the same one or two targets: reuse one decision per set of wanting targets rather
  // than building sets on the hot path.
  const decisions = new Map<string, CaptureDecision>();
  return {
    subjectPrefix: config.nats.subjectPrefix,
    decide(key) {
      let wanting: Target[] | undefined;
      let cacheKey = '';
      for (let i = 0; i < targets.length; i++) {
        const target = targets[i] as Target;
        if (targetWants(target, key)) {
          (wanting ??= []).push(target);
          cacheKey += `${i},`;
        }
      }
      if (!wanting) return null;
      let decision = decisions.get(cacheKey);
      if (!decision) {
        // Bounded: many targets with overlapping filters could otherwise yield one entry per subset.
        if (decisions.size >= MAX_CACHED_DECISIONS) decisions.clear();
        decision = merge(wanting, tapLimit);
        decisions.set(cacheKey, decision);
      }
      return decision;
    },
  };
}

function merge(wanting: readonly Target[], tapLimit: number): CaptureDecision {
  let bodyLimit = 0;
  const cookieNames = new Set<string>();
  const revealHeaders = new Set<string>();
  for (const t of wanting) {
    bodyLimit = Math.max(bodyLimit, t.maxBodyBytes);
    for (const c of t.cookieNames) cookieNames.add(c);
    for (const h of t.revealHeaders) revealHeaders.add(h);
  }
  return { bodyLimit: Math.min(bodyLimit, tapLimit), cookieNames, revealHeaders };
}
