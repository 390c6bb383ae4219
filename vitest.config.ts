import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no DNS server and no pod (the edit loop: `npm run test:unit`);
// `integration` starts real Knot servers, pods and child processes.
export default defineConfig({
  test: {
    // Integration tests start real DNS servers and pods; two cores, so keep files in parallel but bounded.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    setupFiles: ['test/support/setup.ts'],
    // Heap checks (the churn test) force a collection before measuring.
    execArgv: ['--expose-gc'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'] } },
    ],
  },
});
