// A custom picker: prefer the pods of the client's own zone, fall back to the others.
//
// A picker is any object with a `name` and a `pick(endpoints, request)` method (and, optionally,
// `update(endpoints)`, called with the whole pool whenever it changes). `endpoints` holds the
// usable endpoints (never empty); `request` is { key, tried, attempt }. Return an endpoint that
// is not in `request.tried` when you can, and undefined only if nothing is acceptable.
//
// Here the zone is read from the pod name: one StatefulSet per zone (web-a-0, web-b-0, ...)
// behind one headless Service. The zone picker only filters; an inner picker (any built-in or
// your own) chooses within the filtered list, so it composes with least-request, shard-key, ...
//
//   npm run build && node examples/custom-picker.mjs

import { pathToFileURL } from 'node:url';

/**
 * @param {{ zonePrefix: string, inner: import('headless-lb').Picker }} options
 * @returns {import('headless-lb').Picker}
 */
export function createZonePicker({ zonePrefix, inner }) {
  // The balancer passes the same candidate array until the pool or health changes, so the
  // filtered list is rebuilt only then: no allocation per pick.
  let filteredFor;
  let local = [];
  return {
    name: `zone(${zonePrefix})+${inner.name}`,
    update(endpoints) {
      inner.update?.(endpoints);
    },
    pick(endpoints, request) {
      if (endpoints !== filteredFor) {
        filteredFor = endpoints;
        local = endpoints.filter((endpoint) => (endpoint.name ?? endpoint.id).startsWith(zonePrefix));
      }
      // In-zone first; when none is left (none there, or all tried), any other endpoint.
      if (local.length > 0) {
        const chosen = inner.pick(local, request);
        if (chosen !== undefined) return chosen;
      }
      return inner.pick(endpoints, request);
    },
  };
}

async function main() {
  const { createBalancer, RoundRobinPicker } = await import('headless-lb');
  const zone = process.env.ZONE ?? 'a';
  const lb = createBalancer({
    endpoints: [
      { address: '127.0.0.11', port: 8080, name: 'web-a-0' },
      { address: '127.0.0.12', port: 8080, name: 'web-a-1' },
      { address: '127.0.0.13', port: 8080, name: 'web-b-0' },
      { address: '127.0.0.14', port: 8080, name: 'web-b-1' },
    ],
    picker: createZonePicker({ zonePrefix: `web-${zone}-`, inner: new RoundRobinPicker() }),
  });
  await lb.ready({ timeoutMs: 1000 });
  const picks = Array.from({ length: 6 }, () => lb.pick().name);
  console.log(`zone ${zone}: ${picks.join(', ')}`);
  await lb.close();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
