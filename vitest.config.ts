import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real DNS servers and pods; two cores, so keep files in parallel but bounded.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    setupFiles: ['test/support/setup.ts'],
    // Heap checks (the churn test) force a collection before measuring.
    execArgv: ['--expose-gc'],
  },
});
