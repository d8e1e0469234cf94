import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cutBody, isUnchangedFor, projectEvent } from '../../dispatcher/projection.ts';
import { makeEvent } from './harness.ts';

describe('projection', () => {
  it('never exceeds maxBodyBytes, keeps a prefix of the bytes, and stays valid UTF-8', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), fc.integer({ min: 1, max: 200 }), (text, max) => {
        const body = makeEvent({ body: text }).data.body;
        const cut = cutBody(body, max);
        const original = Buffer.from(text);
        const bytes = Buffer.from(cut?.data ?? '', 'utf8');
        expect(cut?.encoding).toBe('utf8');
        expect(bytes.length).toBe(cut?.capturedBytes);
        expect(bytes.length).toBeLessThanOrEqual(Math.max(max, 0));
        expect(bytes.length).toBeGreaterThanOrEqual(Math.min(original.length, max) - 3);
        expect(original.subarray(0, bytes.length).equals(bytes)).toBe(true);
        expect(cut?.truncated).toBe(bytes.length < original.length);
        expect(cut?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      }),
    );
  });

  it('cuts a base64 body by bytes', () => {
    const raw = Buffer.from([0xff, 0xfe, 0xfd, 0xfc, 0xfb]);
    const cut = cutBody(makeEvent({ body: raw }).data.body, 2);
    expect(cut).toMatchObject({ encoding: 'base64', data: raw.subarray(0, 2).toString('base64'), capturedBytes: 2, truncated: true });
  });

  it('reuses the published event only when nothing has to be removed for the target', () => {
    const plain = makeEvent({ body: 'abc' });
    const settings = { cookieNames: [], revealHeaders: [], maxBodyBytes: 10 };
    expect(isUnchangedFor(plain, settings)).toBe(true);
    expect(isUnchangedFor(plain, { ...settings, maxBodyBytes: 2 })).toBe(false);
    expect(isUnchangedFor(plain, { ...settings, maxBodyBytes: 0 })).toBe(false);
    const withSecrets = makeEvent({ headers: { authorization: ['x'] }, cookies: { a: '1' } });
    expect(isUnchangedFor(withSecrets, settings)).toBe(false);
    expect(isUnchangedFor(withSecrets, { ...settings, cookieNames: ['a'], revealHeaders: ['authorization'] })).toBe(true);
    expect(projectEvent(withSecrets, settings).data).toMatchObject({ headers: {}, cookies: {}, redactedHeaders: ['authorization'] });
  });
});
