import { readFileSync } from 'node:fs';

// New TCP connections to one local port, counted from /proc/net/tcp: every socket with that port at either end,
// keyed by its other (ephemeral) port. Closed sockets stay listed in TIME_WAIT for 60 s, so a connection is seen
// even when it lived between two samples. A port reused within the window counts once: the figure is a lower bound.

function portsTalkingTo(port: number): Set<number> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      const remote = cols[2];
      if (!local || !remote || !local.includes(':')) continue;
      const lp = local.slice(local.lastIndexOf(':') + 1);
      const rp = remote.slice(remote.lastIndexOf(':') + 1);
      // The listening socket itself has remote port 0000.
      if (rp === hex) out.add(parseInt(lp, 16));
      else if (lp === hex && rp !== '0000') out.add(parseInt(rp, 16));
    }
  }
  return out;
}

export interface ChurnCounter {
  stop(): { newConnections: number; perSecond: number };
}

export function countNewConnections(port: number, intervalMs = 1000): ChurnCounter {
  const started = performance.now();
  const before = portsTalkingTo(port);
  const seen = new Set<number>();
  const sample = () => {
    for (const p of portsTalkingTo(port)) if (!before.has(p)) seen.add(p);
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const s = (performance.now() - started) / 1000;
      return { newConnections: seen.size, perSecond: seen.size / s };
    },
  };
}
