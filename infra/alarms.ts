import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/**
 * The reload failure metric as functions/shared/metrics.ts publishes it in embedded metric format:
 * Powertools adds the dimension `service` with the Metrics instance's serviceName.
 */
export const RELOAD_FAILURES_METRIC = {
  namespace: 'vaas',
  metricName: 'ReloadFailures',
  dimensionsMap: { service: 'reload' },
};

/** Age of the oldest queued task that raises an alarm: reloads normally start within seconds. */
export const OLDEST_TASK_AGE_THRESHOLD = Duration.minutes(10);

export interface VaasAlarmsProps {
  taskQueue: IQueue;
  deadLetterQueue: IQueue;
  /** SNS topic that receives alarm and OK notifications; without it the alarms only change state. */
  alarmTopicArn?: string;
}

/** Alarms on the three signs that changes stop reaching the Varnish servers. */
export class VaasAlarms extends Construct {
  readonly deadLetters: Alarm;
  readonly reloadFailures: Alarm;
  readonly oldestTaskAge: Alarm;

  constructor(scope: Construct, id: string, props: VaasAlarmsProps) {
    super(scope, id);

    this.deadLetters = new Alarm(this, 'DeadLetters', {
      alarmDescription:
        'Task messages reached the dead-letter queue after repeated failed deliveries; the reconciler ' +
        'retries the clusters, but the cause needs a look (see the reload function log).',
      metric: props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    this.reloadFailures = new Alarm(this, 'ReloadFailures', {
      alarmDescription: 'At least one cluster reload failed (VCL compile error or unreachable server).',
      metric: new Metric({ ...RELOAD_FAILURES_METRIC, period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    this.oldestTaskAge = new Alarm(this, 'OldestTaskAge', {
      alarmDescription: `A task has waited in the queue for more than ${OLDEST_TASK_AGE_THRESHOLD.toMinutes()} minutes.`,
      metric: props.taskQueue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: OLDEST_TASK_AGE_THRESHOLD.toSeconds(),
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    if (props.alarmTopicArn) {
      const action = new SnsAction(Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn));
      for (const alarm of [this.deadLetters, this.reloadFailures, this.oldestTaskAge]) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }
}
