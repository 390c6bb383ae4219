import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Attributes, BatchObservableCallback, Meter } from '@opentelemetry/api';
import type { EventEmitter } from 'eventemitter3';
import type {
  AttemptEndMessage,
  Balancer,
  BalancerEvents,
  EjectEvent,
  Endpoint,
  PoolChange,
  RecordsSkippedEvent,
  ResolutionError,
  ResolveEvent,
} from '../index.js';
import { ATTR, EndpointAttributeCache, errorType, failureKind } from './attributes.js';

/** The semantic conventions' advice for request and DNS durations, seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/**
 * The metrics of one balancer: attempts from the `headless-lb:attempt:end` diagnostics channel
 * (this balancer's endpoints only), the rest from its events and, at each collection, `stats()`.
 * `dispose()` removes every listener, subscription and callback it added.
 */
export class BalancerMetrics {
  private readonly attributes: EndpointAttributeCache;
  /** The endpoints of this balancer: the channel carries every balancer's attempts. */
  private readonly mine = new WeakSet<Endpoint>();
  private readonly service: Attributes;
  private readonly dispose_: Array<() => void> = [];

  constructor(
    private readonly lb: Balancer,
    meter: Meter,
  ) {
    this.attributes = new EndpointAttributeCache(lb.service);
    this.service = { [ATTR.serverAddress]: lb.service };
    for (const endpoint of lb.endpoints()) this.mine.add(endpoint);

    // One histogram, no separate counter: its count is the attempts, as http.client.request.duration's
    // is the requests (each point costs the SDK a hash of its attributes: the bulk of this cost).
    const attemptDuration = meter.createHistogram('headless_lb.attempt.duration', {
      unit: 's',
      description:
        'Duration of attempts sent to pods, by pod and outcome (success, failure with its kind and error type, cancelled); its count is the number of attempts.',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    const onAttemptEnd = (message: unknown): void => {
      const m = message as AttemptEndMessage;
      if (!this.mine.has(m.endpoint)) return;
      const failed = m.outcome === 'failure';
      const attributes = this.attributes.attempt(
        m.endpoint,
        m.outcome,
        failed ? failureKind(m.error) : undefined,
        failed ? errorType(m.error) : undefined,
      );
      attemptDuration.record(m.durationMs / 1000, attributes);
    };
    subscribe('headless-lb:attempt:end', onAttemptEnd);
    this.dispose_.push(() => unsubscribe('headless-lb:attempt:end', onAttemptEnd));

    const budgetRefusals = meter.createCounter('headless_lb.retry_budget.exhausted', {
      unit: '{retry}',
      description: 'Retries refused because the retry budget was spent (the call failed with its last error).',
    });
    this.on('budget-exhausted', () => budgetRefusals.add(1, this.service));
    const hedgeRefusals = meter.createCounter('headless_lb.hedge_budget.exhausted', {
      unit: '{hedge}',
      description: 'Hedges not sent because the hedge budget was spent (the first attempt went on alone).',
    });
    this.on('hedge-budget-exhausted', () => hedgeRefusals.add(1, this.service));

    const ejections = meter.createCounter('headless_lb.endpoint.ejections', {
      unit: '{ejection}',
      description: 'Pods ejected by outlier detection, by pod and reason.',
    });
    this.on('eject', (event: EjectEvent) => ejections.add(1, this.attributes.ejection(event.endpoint, event.reason)));

    const lookups = meter.createCounter('headless_lb.dns.lookups', {
      unit: '{lookup}',
      description: 'DNS lookups of the Service, by outcome: success, empty (NXDOMAIN/NODATA), error (with error.type).',
    });
    const lookupDuration = meter.createHistogram('dns.lookup.duration', {
      unit: 's',
      description: 'Duration of successful DNS lookups of the Service (all the queries of one lookup).',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    const lookupOk = { ...this.service, [ATTR.lookupOutcome]: 'success' };
    const lookupEmpty = { ...this.service, [ATTR.lookupOutcome]: 'empty' };
    const dnsName = { [ATTR.dnsQuestionName]: lb.service };
    this.on('resolve', (event: ResolveEvent) => {
      lookups.add(1, lookupOk);
      lookupDuration.record(event.durationMs / 1000, dnsName);
    });
    this.on('empty', () => lookups.add(1, lookupEmpty));
    this.on('resolve-error', (error: ResolutionError) =>
      lookups.add(1, { ...this.service, [ATTR.lookupOutcome]: 'error', [ATTR.errorType]: error.reason }),
    );

    const skipped = meter.createCounter('headless_lb.dns.records_skipped', {
      unit: '{record}',
      description: 'DNS records a lookup did not use, by reason (wrong owner, unsafe address, ...).',
    });
    this.on('records-skipped', (event: RecordsSkippedEvent) => {
      for (const record of event.records) skipped.add(1, { ...this.service, [ATTR.skipReason]: record.reason });
    });

    this.on('change', (change: PoolChange) => {
      for (const endpoint of change.added) this.mine.add(endpoint);
      for (const endpoint of change.readdressed) this.attributes.forget(endpoint);
    });

    // Gauges and the balancer's own counters, read from one stats() per collection.
    const size = meter.createObservableGauge('headless_lb.pool.size', {
      unit: '{endpoint}',
      description: 'Endpoints in the pool (what DNS returned).',
    });
    const healthy = meter.createObservableGauge('headless_lb.pool.healthy', {
      unit: '{endpoint}',
      description: 'Endpoints neither ejected nor failing.',
    });
    const ejected = meter.createObservableGauge('headless_lb.pool.ejected', {
      unit: '{endpoint}',
      description: 'Endpoints ejected by outlier detection now.',
    });
    const panic = meter.createObservableGauge('headless_lb.pool.panic', {
      unit: '1',
      description: '1 while panic mode is on (too few healthy endpoints: all are used), else 0.',
    });
    const inflight = meter.createObservableUpDownCounter('headless_lb.endpoint.inflight', {
      unit: '{attempt}',
      description: 'Attempts in flight, by pod.',
    });
    const calls = meter.createObservableCounter('headless_lb.calls', {
      unit: '{call}',
      description: 'Calls of run() and dispatch() (the adapters make one per request).',
    });
    const retries = meter.createObservableCounter('headless_lb.retries', {
      unit: '{retry}',
      description: 'Attempts after the first of a call (hedges excluded).',
    });
    const hedges = meter.createObservableCounter('headless_lb.hedges', { unit: '{hedge}', description: 'Hedged attempts sent.' });
    // Observed only with subsetting on.
    const subsetSize = meter.createObservableGauge('headless_lb.subset.size', {
      unit: '{endpoint}',
      description: 'Subset size: pods this client sends requests without a key to (the subset.size option).',
    });
    const subsetMembers = meter.createObservableGauge('headless_lb.subset.members', {
      unit: '{endpoint}',
      description: 'Subset members now (fewer than the size when the pool is smaller).',
    });
    const observe: BatchObservableCallback = (result) => {
      const stats = lb.stats();
      let ejectedNow = 0;
      for (const endpoint of stats.endpoints) if (endpoint.state === 'ejected') ejectedNow++;
      result.observe(size, stats.size, this.service);
      result.observe(healthy, stats.healthy, this.service);
      result.observe(ejected, ejectedNow, this.service);
      result.observe(panic, stats.panic ? 1 : 0, this.service);
      result.observe(calls, stats.calls, this.service);
      result.observe(retries, stats.retries, this.service);
      result.observe(hedges, stats.hedges, this.service);
      if (stats.subset !== undefined) {
        result.observe(subsetSize, stats.subset.size, this.service);
        result.observe(subsetMembers, stats.subset.members.length, this.service);
      }
      for (const endpoint of lb.endpoints()) result.observe(inflight, endpoint.inflight, this.attributes.base(endpoint));
    };
    const observables = [size, healthy, ejected, panic, inflight, calls, retries, hedges, subsetSize, subsetMembers];
    meter.addBatchObservableCallback(observe, observables);
    this.dispose_.push(() => meter.removeBatchObservableCallback(observe, observables));
  }

  dispose(): void {
    for (const undo of this.dispose_.splice(0)) undo();
  }

  private on<E extends keyof BalancerEvents>(event: E, listener: (...args: BalancerEvents[E]) => void): void {
    const fn = listener as EventEmitter.EventListener<BalancerEvents, E>;
    this.lb.on(event, fn);
    this.dispose_.push(() => this.lb.off(event, fn));
  }
}
