// Work that must happen however this process ends: a normal end, process.exit(), an uncaught error, or a
// SIGINT/SIGTERM/SIGHUP that nobody else handles. Node's default action for those signals skips 'exit' listeners,
// which is how a Ctrl-C used to leave children running and temporary directories behind.

const hooks = new Set<() => void>();
let hooked = false;

function runHooks(): void {
  for (const fn of [...hooks].reverse()) {
    hooks.delete(fn);
    try {
      fn();
    } catch {
      // One hook failing (a directory already gone) must not keep the others from killing children.
    }
  }
}

function hookProcess(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', runHooks);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      // Someone else (the demo runner) handles this signal, stops its children gracefully and exits, which runs
      // the hooks through 'exit'.
      if (process.listenerCount(signal) > 1) return;
      runHooks();
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/**
 * Runs `fn` (synchronous: nothing asynchronous completes once the process is exiting) when this process ends, once,
 * latest registered first. Returns a function that unregisters it, for a caller that cleaned up by itself.
 */
export function atExit(fn: () => void): () => void {
  hookProcess();
  hooks.add(fn);
  return () => {
    hooks.delete(fn);
  };
}
