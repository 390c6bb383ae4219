import { defineConfig } from 'tsup';

const entry = {
  index: 'src/index.ts',
  'http/index': 'src/http/index.ts',
  'grpc/index': 'src/grpc/index.ts',
  'otel/index': 'src/otel/index.ts',
  'testing/index': 'src/testing/index.ts',
};

// Peer dependencies stay imports: the user's copy must be the one used.
const external = ['undici', '@grpc/grpc-js', '@grpc/proto-loader', '@opentelemetry/api'];

export default defineConfig([
  {
    // The `headless-lb` command (bin in package.json): ESM only; its shebang is kept and the file made executable.
    entry: { ...entry, cli: 'src/cli/bin.ts' },
    format: ['esm'],
    target: 'node20',
    dts: { entry },
    sourcemap: true,
    clean: true,
    splitting: true,
    external,
  },
  {
    entry,
    format: ['cjs'],
    target: 'node20',
    dts: true,
    sourcemap: true,
    // Shared chunks, so `instanceof` works across entry points (headless-lb and headless-lb/http).
    splitting: true,
    external,
    // p-retry is ESM-only; bundling it keeps `require('headless-lb')` free of require(esm)
    // warnings on Node 20.
    noExternal: ['p-retry', 'is-network-error'],
    // import.meta.url from __filename: the test kit finds its .proto files next to dist/.
    shims: true,
  },
]);
