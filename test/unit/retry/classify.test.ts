import { describe, expect, it } from 'vitest';
import { NotSentError, RetryableError } from '../../../src/errors.js';
import { classifyFailure } from '../../../src/failure-kind.js';

const withCode = (code: string): Error => Object.assign(new Error(code), { code });

describe('classifyFailure', () => {
  it('knows connect errors never reached the pod', () => {
    expect(classifyFailure(withCode('ECONNREFUSED'))).toBe('not-sent');
    expect(classifyFailure(withCode('UND_ERR_CONNECT_TIMEOUT'))).toBe('not-sent');
    expect(classifyFailure(new NotSentError('no connection'))).toBe('not-sent');
  });

  it('looks through fetch-style causes and AggregateErrors', () => {
    expect(classifyFailure(new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') }))).toBe('not-sent');
    expect(classifyFailure(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]))).toBe('not-sent');
    expect(classifyFailure(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNRESET')]))).toBe('maybe-sent');
  });

  it('treats resets, timeouts and RetryableError as maybe sent', () => {
    expect(classifyFailure(withCode('ECONNRESET'))).toBe('maybe-sent');
    expect(classifyFailure(withCode('UND_ERR_SOCKET'))).toBe('maybe-sent');
    expect(classifyFailure(new RetryableError('503'))).toBe('maybe-sent');
  });

  it('does not retry application errors', () => {
    expect(classifyFailure(new Error('400 bad request'))).toBe('fatal');
    expect(classifyFailure('a string')).toBe('fatal');
    expect(classifyFailure(undefined)).toBe('fatal');
  });
});
