// NATS subject names. Events go to `<prefix>.requests.<METHOD>` so that `nats sub '<prefix>.requests.POST'` shows
// one method and `nats sub '<prefix>.requests.>'` shows all.

const SUBJECT_TOKEN = /^[A-Za-z0-9_-]+$/;

/** Methods that are not a plain token (HTTP allows `.` and others NATS gives meaning to) share one subject. */
export function requestSubject(prefix: string, method: string): string {
  return `${prefix}.requests.${SUBJECT_TOKEN.test(method) ? method : '_OTHER'}`;
}

export function allRequestsSubject(prefix: string): string {
  return `${prefix}.requests.>`;
}
