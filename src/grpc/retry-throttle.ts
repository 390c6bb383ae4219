import type { RetryThrottling } from './service-config.js';

/**
 * gRFC A6's retry throttling, one bucket per channel: it starts full (`maxTokens`); an attempt that
 * fails with a retryable status takes a token, a call that ends OK gives `tokenRatio` back; a
 * retry is allowed only while more than half the tokens are left. So when most calls fail, retries
 * stop adding load; they resume as calls succeed again. The balancer's retry budget applies too.
 */
export class RetryThrottle {
  private tokens: number;
  private readonly threshold: number;

  constructor(private readonly settings: RetryThrottling) {
    this.tokens = settings.maxTokens;
    this.threshold = settings.maxTokens / 2;
  }

  /** An attempt failed with a retryable status: takes a token; whether a retry may follow. */
  failed(): boolean {
    this.tokens = Math.max(0, this.tokens - 1);
    return this.tokens > this.threshold;
  }

  /** A call ended OK. */
  succeeded(): void {
    const tokens = this.tokens + this.settings.tokenRatio;
    this.tokens = tokens > this.settings.maxTokens ? this.settings.maxTokens : tokens;
  }

  /** Tokens left (for tests and stats). */
  get available(): number {
    return this.tokens;
  }
}
