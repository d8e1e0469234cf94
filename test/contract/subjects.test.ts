import { describe, expect, it } from 'vitest';
import { allRequestsSubject, requestSubject } from '../../contract/subjects.ts';

describe('NATS subjects', () => {
  it('puts each event on <prefix>.requests.<METHOD>', () => {
    expect(requestSubject('request-mirror', 'POST')).toBe('request-mirror.requests.POST');
    expect(requestSubject('rm', 'M-SEARCH')).toBe('rm.requests.M-SEARCH');
    expect(requestSubject('rm', 'x_y9')).toBe('rm.requests.x_y9');
  });

  it('sends a method that is not a plain NATS token to _OTHER', () => {
    for (const method of ['M.SEARCH', 'A*', 'A>', 'A B', '', 'GET\t', 'É']) {
      expect(requestSubject('rm', method), JSON.stringify(method)).toBe('rm.requests._OTHER');
    }
  });

  it('subscribes to every method with the > wildcard under the prefix', () => {
    expect(allRequestsSubject('request-mirror')).toBe('request-mirror.requests.>');
  });
});
