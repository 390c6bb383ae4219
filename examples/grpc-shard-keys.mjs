// A gRPC client with shard keys over the pods of a headless Service.
//
// A generated client (@grpc/proto-loader) talks to a sharded key-value store through
// headless-lb/grpc: one channel per pod, the pod chosen per call by consistent hashing of the
// `x-shard-key` metadata, so every key lives on one pod. The "cluster" is the testing kit: an
// embedded Kubernetes-shaped DNS server (TTL 1 s) and three gRPC pods on 127.x addresses. Then the
// Service scales up: the existing client sees the new pod within the TTL, and only about a
// quarter of the keys move to it (consistent hashing), the others stay where they are. Last, a
// pod crashes: the calls for its keys fail over to the next pod, none fails.
//
//   npm run build && node examples/grpc-shard-keys.mjs       (exits 0 on success, in a few seconds)

import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createBalancer } from 'headless-lb';
import { createGrpcChannel } from 'headless-lb/grpc';
import { ClusterModel, serviceFqdn, startDnsServer } from 'headless-lb/testing';

const PROTO = fileURLToPath(new URL('./grpc-shard-keys.proto', import.meta.url));
const { KV } = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO)).kv;

// ---- the cluster: DNS + gRPC pods (a real service would just be there) -----------------------

const block = `127.${100 + Math.floor(Math.random() * 150)}.${Math.floor(Math.random() * 256)}`;
const pods = [];
let port = 0;

async function startPod(ordinal) {
  const name = `kv-${ordinal}`;
  const address = `${block}.${11 + ordinal}`;
  const store = new Map();
  const server = new grpc.Server();
  server.addService(KV.service, {
    Put: ({ request }, done) => {
      store.set(request.key, request.value);
      done(null, { pod: name });
    },
    Get: ({ request }, done) => done(null, { pod: name, found: store.has(request.key), value: store.get(request.key) ?? '' }),
  });
  port = await new Promise((resolve, reject) =>
    server.bindAsync(`${address}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  pods.push({ name, address, server });
}

const model = new ClusterModel({ ttl: 1 });
const dns = await startDnsServer({ model });
async function publish() {
  model.setService({
    name: 'kv',
    ports: [{ name: 'grpc', port }],
    pods: pods.map((p) => ({ hostname: p.name, ip: p.address, ready: true })),
  });
  await dns.publish(model.clone());
}
for (let i = 0; i < 3; i++) await startPod(i);
await publish();

// ---- the client --------------------------------------------------------------------------------

const lb = createBalancer({
  service: serviceFqdn(model, 'kv'), // kv.default.svc.cluster.local
  portName: 'grpc', // SRV: pods are known by name, so keys follow a pod across restarts
  dnsServers: [dns.address],
  picker: 'shard-key',
});
const channel = createGrpcChannel(lb, {
  credentials: grpc.credentials.createInsecure(),
  keyMetadata: 'x-shard-key',
  idempotent: ['/kv.KV/Get'], // Get may be retried on another pod; Put only if it never left
});
const client = channel.client(KV); // = new KV('unused', creds, { channelOverride: channel })

const withKey = (key) => {
  const metadata = new grpc.Metadata();
  metadata.set('x-shard-key', key);
  return metadata;
};
const call = (method, request, metadata) =>
  new Promise((resolve, reject) =>
    client[method](request, metadata, { deadline: Date.now() + 2000 }, (error, reply) => (error ? reject(error) : resolve(reply))),
  );

let failed = false;
const check = (ok, message) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${message}`);
  if (!ok) failed = true;
};

try {
  await lb.ready({ timeoutMs: 5000 });
  const keys = Array.from({ length: 60 }, (_, i) => `user-${i}`);
  const home = new Map();
  for (const key of keys) home.set(key, (await call('Put', { key, value: `v-${key}` }, withKey(key))).pod);
  const spread = Object.fromEntries(pods.map((p) => [p.name, [...home.values()].filter((n) => n === p.name).length]));
  console.log('keys per pod:', spread);
  check(
    Object.values(spread).every((n) => n > 0),
    'keys are spread over the 3 pods',
  );

  let found = 0;
  for (const key of keys) {
    const reply = await call('Get', { key }, withKey(key));
    if (reply.found && reply.pod === home.get(key)) found++;
  }
  check(found === keys.length, `every Get found its key on the pod that stored it (${found}/${keys.length})`);

  // The key can also be given in code, around the call, instead of metadata.
  const viaCode = await channel.withKey('user-7', () => call('Get', { key: 'user-7' }, new grpc.Metadata()));
  check(viaCode.found && viaCode.pod === home.get('user-7'), `channel.withKey('user-7', ...) went to ${viaCode.pod}`);

  // Scale up: the new pod enters DNS; the running client re-resolves when the TTL runs out.
  await startPod(3);
  const changed = new Promise((resolve) => lb.once('change', resolve));
  const started = performance.now();
  await publish();
  await changed;
  console.log(`kv-3 joined the pool after ${Math.round(performance.now() - started)} ms`);
  let moved = 0;
  for (const key of keys) {
    const reply = await call('Get', { key }, withKey(key));
    if (reply.pod !== home.get(key)) {
      moved++;
      if (reply.pod !== 'kv-3') check(false, `${key} moved between old pods (${home.get(key)} -> ${reply.pod})`);
    }
  }
  console.log(`${moved}/${keys.length} keys now map to kv-3 (ideal: 1/4 = ${keys.length / 4})`);
  check(moved > 0 && moved < keys.length / 2, 'only the keys that belong to the new pod moved');

  // A pod crashes (still in DNS: connections are refused). Calls for its keys never reach it, so
  // headless-lb re-sends them to the next pod on the ring, even the non-idempotent Put.
  const crashed = pods[1];
  crashed.server.forceShutdown();
  await new Promise((resolve) => setTimeout(resolve, 100)); // the client sees its connection reset
  let errors = 0;
  let rerouted = 0;
  for (const key of keys) {
    try {
      const reply = await call('Put', { key, value: 'again' }, withKey(key));
      if (reply.pod === crashed.name) errors++;
      else if (home.get(key) === crashed.name) rerouted++;
    } catch {
      errors++;
    }
  }
  check(errors === 0 && rerouted > 0, `${crashed.name} crashed: 0 failed Puts, ${rerouted} rerouted to other pods`);
} catch (error) {
  check(false, `unexpected error: ${error?.message ?? error}`);
} finally {
  client.close();
  await channel.close();
  await lb.close();
  for (const pod of pods) pod.server.forceShutdown();
  await dns.close();
}
process.exitCode = failed ? 1 : 0;
