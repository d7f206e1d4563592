import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Suites that start varnishd compile VCL with gcc; two cores cannot run many at once.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Keep the JSON logs of agents and workers out of the test report unless asked for.
    env: { POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN' },
  },
});
