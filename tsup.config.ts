import { defineConfig } from 'tsup';

const entry = {
  index: 'src/index.ts',
  'testing/index': 'src/testing/index.ts',

};

export default defineConfig([
  {
    entry,
    format: ['esm'],
    target: 'node20',
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: true,
  },
  {
    entry,
    format: ['cjs'],
    target: 'node20',
    dts: true,
    sourcemap: true,
    // p-retry is ESM-only; bundling it keeps `require('headless-lb')` free of
    // require(esm) warnings on Node 20.
    noExternal: ['p-retry', 'is-network-error'],
  },
]);
