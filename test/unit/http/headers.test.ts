import { describe, expect, it } from 'vitest';
import { readHeader, withHost, takeHeader } from '../../../src/http/headers.js';

describe('readHeader', () => {
  it('reads plain objects, case-insensitively, joining arrays', () => {
    expect(readHeader({ 'x-user-id': 'u1' }, 'x-user-id')).toBe('u1');
    expect(readHeader({ 'X-User-Id': 'u2' }, 'x-user-id')).toBe('u2');
    expect(readHeader({ 'x-user-id': ['a', 'b'] }, 'x-user-id')).toBe('a, b');
    expect(readHeader({ 'x-n': 42 }, 'x-n')).toBe('42');
    expect(readHeader({ other: 'x' }, 'x-user-id')).toBeUndefined();
  });

  it('reads flat arrays and iterables of pairs', () => {
    expect(readHeader(['X-User-Id', 'u3', 'a', 'b'], 'x-user-id')).toBe('u3');
    expect(readHeader(['x-k', '1', 'X-K', '2'], 'x-k')).toBe('1, 2');
    expect(readHeader(new Map([['X-User-Id', 'u4']]), 'x-user-id')).toBe('u4');
    expect(readHeader(new Headers({ 'x-user-id': 'u5' }), 'x-user-id')).toBe('u5');
  });

  it('gives undefined for no headers', () => {
    expect(readHeader(undefined, 'x')).toBeUndefined();
    expect(readHeader(null, 'x')).toBeUndefined();
  });
});

describe('withHost', () => {
  it('adds Host to every shape without touching the caller’s headers', () => {
    expect(withHost(undefined, 'svc:80')).toEqual(['host', 'svc:80']);
    const shared = Object.freeze(['host', 'svc:80']);
    expect(withHost(null, 'svc:80', shared)).toBe(shared);
    const object = { accept: 'json', 'x-multi': ['1', '2'], skipped: undefined };
    expect(withHost(object, 'svc:80')).toEqual(['accept', 'json', 'x-multi', ['1', '2'], 'host', 'svc:80']);
    expect(object).toEqual({ accept: 'json', 'x-multi': ['1', '2'], skipped: undefined });
    const flat = ['accept', 'json'];
    expect(withHost(flat, 'svc:80')).toEqual(['accept', 'json', 'host', 'svc:80']);
    expect(flat).toEqual(['accept', 'json']);
    expect(withHost(new Map([['accept', 'json']]) as unknown as Record<string, string>, 'svc:80')).toEqual([
      'accept',
      'json',
      'host',
      'svc:80',
    ]);
    expect(withHost(new Headers({ 'set-cookie': 'a' }) as unknown as Record<string, string>, 'svc:80')).toEqual([
      'set-cookie',
      'a',
      'host',
      'svc:80',
    ]);
  });

  it('keeps a Host the caller set, in any case', () => {
    const object = { Host: 'mine' };
    expect(withHost(object, 'svc:80')).toBe(object);
    const flat = ['HOST', 'mine'];
    expect(withHost(flat, 'svc:80')).toBe(flat);
    expect(withHost(new Map([['Host', 'mine']]) as unknown as Record<string, string>, 'svc:80')).toEqual(['Host', 'mine']);
  });

  it('expands multi-valued pairs of an iterable into repeated names', () => {
    expect(withHost(new Map([['x', ['1', '2']]]) as unknown as Record<string, string>, 'h')).toEqual(['x', '1', 'x', '2', 'host', 'h']);
  });
});

describe('takeHeader', () => {
  it('takes the header out of every header shape, case-insensitively, and never mutates the caller', () => {
    const object = { 'X-Headless-LB': 'retries=1', accept: 'a', multi: ['b', 'c'] };
    expect(takeHeader(object, 'x-headless-lb')).toEqual({ value: 'retries=1', rest: ['accept', 'a', 'multi', 'b', 'multi', 'c'] });
    expect(object['X-Headless-LB']).toBe('retries=1');
    const flat = ['x-headless-lb', 'retries=1', 'accept', 'a', 'x-headless-lb', 'idempotent'];
    expect(takeHeader(flat, 'x-headless-lb')).toEqual({ value: 'retries=1, idempotent', rest: ['accept', 'a'] });
    expect(flat).toHaveLength(6);
    expect(takeHeader(new Map([['x-headless-lb', 'retries=1']]), 'x-headless-lb')).toEqual({ value: 'retries=1', rest: [] });
    expect(takeHeader({ 'x-headless-lb': ['retries=1', 'idempotent'] }, 'x-headless-lb')?.value).toBe('retries=1, idempotent');
  });

  it('leaves headers without it as they are', () => {
    expect(takeHeader({ accept: 'a' }, 'x-headless-lb')).toBeUndefined();
    expect(takeHeader(['accept', 'a'], 'x-headless-lb')).toBeUndefined();
    expect(takeHeader(null, 'x-headless-lb')).toBeUndefined();
    // an iterable may be one-shot: flattened either way
    function* pairs(): Generator<[string, string]> {
      yield ['accept', 'a'];
    }
    expect(takeHeader(pairs(), 'x-headless-lb')).toEqual({ value: undefined, rest: ['accept', 'a'] });
  });
});
