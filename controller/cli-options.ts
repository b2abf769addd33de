/**
 * The flags every command takes, as commander hands them to an action. A module of its own so
 * that watch.ts, which cli.ts loads lazily, can read them without importing cli.ts back.
 */
export interface CommonFlags {
  dir: string;
  git?: string;
  ref: string;
  subdir: string;
  maxDeletions?: string;
  stateDir?: string;
  instance: string;
  prefix: string;
  subnetPool: string;
  dockerHost?: string;
  smolvm?: string;
  logLevel: string;
  allowEmpty?: boolean;
  allowOutside?: boolean;
  adopt?: boolean;
  gitSshKey?: string;
  gitKnownHosts?: string;
  verifyCommits?: string;
  gitInterval?: string;
  webhookAddr?: string;
  webhookSecretFile?: string;
  secretsFile?: string;
  publishHost: string;
  concurrency: string;
  lockTimeout: string;
  waitTimeout: string;
  json?: boolean;
  notify?: string[];
  notifyFormat?: string;
  source?: boolean;
  /** status --watch: redraw as it changes. */
  watch?: boolean;
  dryRun?: boolean;
  once?: boolean;
  retries: string;
  resync: string;
  metricsAddr?: string;
  shutdownTimeout: string;
  smolvmPoll: string;
  selector?: string;
  fleet?: string;
}
