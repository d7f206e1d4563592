import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { ReloadObserver } from '../ports.js';

/** Publishes reload outcomes as CloudWatch metrics in embedded metric format. */
export function createMetricsObserver(): ReloadObserver {
  const metrics = new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'vaas',
    serviceName: 'reload',
  });

  return {
    reloaded(_clusterId, durationMs, succeeded) {
      metrics.addMetric(succeeded ? 'Reloads' : 'ReloadFailures', MetricUnit.Count, 1);
      metrics.addMetric('ReloadDuration', MetricUnit.Milliseconds, durationMs);
      metrics.publishStoredMetrics();
    },
    skipped(_clusterId, taskCount) {
      metrics.addMetric('SkippedTasks', MetricUnit.Count, taskCount);
      metrics.publishStoredMetrics();
    },
  };
}
