import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';

// One list+watch of one kind of object (an informer), kept alive for as long as it is wanted. client-node's informer
// gives up on the first error other than 410 Gone: it calls its error callbacks and stops. This wrapper then starts
// a fresh informer after a backoff (1 s doubling to 30 s), which lists again, so deletions made while the API server
// was out of reach are seen. Until that list succeeds, `objects()` keeps answering with the last listed state: a lost
// API server must never empty a target list.

export interface ResourceWatchOptions<T extends KubernetesObject> {
  readonly kubeConfig: KubeConfig;
  /** API path of the collection, e.g. `/apis/requestmirror.io/v1alpha1/namespaces/web/mirrortargets`. */
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Called after each change to `objects()` (a listing, or an added, updated or deleted object). */
  readonly onChange: () => void;
  /** Called when the watch fails (`error`), and when it lists successfully (`undefined`): the first time, and again
   * after each failure. */
  readonly onHealth: (error: Error | undefined) => void;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class ResourceWatch<T extends KubernetesObject> {
  readonly #options: ResourceWatchOptions<T>;
  #informer: ListWatch<T> | undefined;
  #snapshot: readonly T[] = [];
  #synced = false;
  #stopped = false;
  #backoffMs: number;
  #retry: NodeJS.Timeout | undefined;
  #error: Error | undefined;

  constructor(options: ResourceWatchOptions<T>) {
    this.#options = options;
    this.#backoffMs = options.minBackoffMs ?? 1000;
    this.#start();
  }

  /** True once a first listing succeeded; before that `objects()` is empty and means nothing. */
  get synced(): boolean {
    return this.#synced;
  }

  /** The error of the watch while it is broken; undefined while it works. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** The objects as last listed and watched; during an outage, the state before it. */
  objects(): readonly T[] {
    return this.#informer && this.#error === undefined && this.#synced ? this.#informer.list() : this.#snapshot;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    void this.#informer?.stop();
  }

  #start(): void {
    const { kubeConfig, path, list, labelSelector, fieldSelector } = this.#options;
    const informer: ListWatch<T> = new ListWatch(
      path,
      new Watch(kubeConfig),
      async () => {
        const listed = await list();
        // The informer stores the listed items right after this promise settles; read them after that.
        setImmediate(() => {
          if (this.#stopped || this.#informer !== informer) return;
          const healthy = this.#synced && this.#error === undefined;
          this.#synced = true;
          this.#backoffMs = this.#options.minBackoffMs ?? 1000;
          this.#error = undefined;
          if (!healthy) this.#options.onHealth(undefined);
          this.#options.onChange();
        });
        return listed;
      },
      false,
      labelSelector,
      fieldSelector,
    );
    const changed = () => {
      if (this.#synced && this.#error === undefined && this.#informer === informer) this.#options.onChange();
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    const onError = (error: unknown) => {
      if (this.#stopped || this.#informer !== informer) return;
      if (this.#error === undefined) this.#snapshot = this.#synced ? [...informer.list()] : this.#snapshot;
      this.#error = error instanceof Error ? error : new Error(String(error));
      this.#options.onHealth(this.#error);
      void informer.stop();
      this.#retry = setTimeout(() => {
        this.#start();
      }, this.#backoffMs);
      this.#backoffMs = Math.min(this.#backoffMs * 2, this.#options.maxBackoffMs ?? 30_000);
    };
    informer.on('error', onError);
    if (this.#synced && this.#error === undefined) this.#snapshot = [...(this.#informer?.list() ?? [])];
    this.#informer = informer;
    // start() rejects only when it cannot build a request at all (e.g. no current cluster): a watch error too.
    informer.start().catch(onError);
  }
}
