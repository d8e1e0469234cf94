import { RequestMirrorError } from '../contract/errors.ts';

/** A watch of MirrorTargets, Secrets or namespaces failed; it restarts with backoff and the last targets stay. */
export class KubernetesWatchFailedError extends RequestMirrorError {
  readonly code = 'RM_KUBERNETES_WATCH_FAILED';
}

/** The dispatcher could not write a MirrorTarget's status; it tries again at the next interval. */
export class StatusWriteFailedError extends RequestMirrorError {
  readonly code = 'RM_KUBERNETES_STATUS_FAILED';
}
