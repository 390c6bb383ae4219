import type { Target } from '../target.js';
import type { DiscoverySource, DiscoveryUpdate } from './source.js';

/** A fixed list of endpoints: for tests, local development, or addresses known in advance. */
export class StaticDiscovery implements DiscoverySource {
  private onUpdate: ((update: DiscoveryUpdate) => void) | undefined;

  constructor(private readonly targets: readonly Target[]) {}

  start(onUpdate: (update: DiscoveryUpdate) => void): void {
    this.onUpdate = onUpdate;
    this.emit();
  }

  async refresh(): Promise<void> {
    this.emit();
  }

  close(): void {
    this.onUpdate = undefined;
  }

  private emit(): void {
    this.onUpdate?.(
      this.targets.length === 0
        ? { kind: 'empty', reason: 'the static endpoint list is empty', queries: 0, durationMs: 0 }
        : { kind: 'targets', targets: this.targets, ttlMs: Number.POSITIVE_INFINITY, queries: 0, durationMs: 0 },
    );
  }
}
