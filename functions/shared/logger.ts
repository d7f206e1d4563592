import { Logger } from '@aws-lambda-powertools/logger';

/** The one logger of the service: JSON lines with cluster, task and request ids as keys. */
export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'vaas',
  logLevel: (process.env.POWERTOOLS_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'INFO') as 'INFO',
});
