#!/usr/bin/env node
import path from 'node:path';
import { Command, Option } from 'commander';
import { DockerDriver } from '../resources/docker/driver.js';
import { DockerError } from '../resources/docker/errors.js';
import { agentDrivers } from '../resources/runtimes.js';
import { cmdExec, type ExecFlags } from './exec-cmd.js';
import { cmdLogs, type LogsFlags } from './logs-cmd.js';
import { cmdStatus } from './status-cmd.js';
import { notifierOf } from './notify.js';
import { loadSpecs } from '../specs/load.js';
import { formatDiagnostic } from '../specs/model.js';
import { DirSource } from '../specs/source.js';
import { gitTracker } from './git-flags.js';
import type { GitTracker } from './git-tracker.js';
import { acquireLock, LockHeldError, type HeldLock } from '../state/lock.js';
import { defaultStateDir, isInside, StatePaths } from '../state/paths.js';
import { durations, ipv4, realish, UsageError, wholeNumber } from './flags.js';
import { makeLogger } from './log.js';
import { PassProgress, TtyLine } from './progress.js';
import { observeAndPlan, type PassOptions } from './pass.js';
import { Controller } from './controller.js';
import type { Logger } from 'pino';
import { formatPlan, hasChanges, planJson } from './plan-format.js';
import { DEFAULT_SUBNET_POOL, validatePool } from './subnets.js';

import { EXIT } from './exit-codes.js';
import type { CommonFlags } from './cli-options.js';
import { parseSelector, selectDocuments, SelectorError, type Selector } from '../specs/selector.js';
import { fleetDiagnostics, readFleet } from '../specs/fleet.js';
import { readServes, writeServes } from '../state/serves.js';

const NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;

function common(cmd: Command): Command {
  return cmd
    .option('--dir <dir>', 'bottles directory', './bottles.d')
    .option('--git <repo>', 'read specs from a committed git revision: a repository on this machine (bare or not) or a remote URL (https, ssh, git, file) instead of --dir')
    .option('--ref <ref>', 'with --git: the revision to apply (branch, tag or commit)', 'HEAD')
    .option('--subdir <path>', 'with --git: where the specs are in the tree', 'bottles.d')
    .option('--git-ssh-key <file>', 'with an ssh --git: the private key (a deploy key)')
    .option('--git-known-hosts <file>', "with an ssh --git: the host keys to trust (never accepted on first sight)")
    .option('--verify-commits <file>', 'with --git: apply only revisions signed by a key in this ssh allowed-signers file')
    .option('--selector <labels>', "serve only the bottles whose metadata.labels match (host=a,tier!=gpu); the others are for other hosts")
    .option('--max-deletions <n>', "a pass that would remove more bottles than this removes none ('unlimited' to disable; default 20 with --once, 3 in watch mode)")
    .option('--state-dir <dir>', 'state directory (default $XDG_STATE_HOME/bottled or ~/.local/state/bottled)')
    .option('--instance <id>', 'instance id: only resources labelled with it are ever changed', 'default')
    .option('--prefix <prefix>', 'resource name prefix', 'bottle')
    .option('--subnet-pool <cidr>', 'where bottle networks get their subnets', DEFAULT_SUBNET_POOL)
    .option('--docker-host <url>', 'Docker Engine (else DOCKER_HOST, else the default socket)')
    .option('--smolvm <path>', 'smolvm binary (else smolvm on PATH)')
    .option('--publish-host <ip>', 'host address sidecar ports are published on', '127.0.0.1')
    .option('--allow-empty', 'let an empty or missing bottles directory prune every bottle')
    .option('--allow-outside', 'let source:/from: paths leave the bottles directory')
    .option('--adopt', "take over declared bottles' resources that another state directory (or a lost one) created with this --instance")
    .option('--secrets-file <file>', 'dotenv file with secret values (wins over the environment)')
    .option('--concurrency <n>', 'bottles reconciled in parallel', '4')
    .option('--lock-timeout <duration>', 'how long to wait for another reconciler', '10s')
    .option('--wait-timeout <duration>', 'bound on each readiness wait', '120s')
    .addOption(new Option('--log-level <level>', 'log level').default(process.env.LOG_LEVEL ?? 'info').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']));
}

/** A bad --selector or fleet file is a usage error (exit 64), said in one line. */
function usage(e: unknown): never {
  if (e instanceof SelectorError) throw new UsageError(e.message);
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT' || err.code === 'EISDIR' || err.code === 'EACCES') throw new UsageError(`${err.path ?? 'fleet file'}: ${err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : 'not readable'}`);
  throw e;
}

function selectorOf(f: CommonFlags): Selector | undefined {
  if (f.selector === undefined) return undefined;
  try {
    return parseSelector(f.selector);
  } catch (e) {
    if (e instanceof SelectorError) throw new UsageError(e.message);
    throw e;
  }
}

function passOptions(f: CommonFlags, paths: StatePaths): PassOptions {
  if (!NAME_RE.test(f.instance)) throw new UsageError(`--instance ${f.instance}: use lowercase letters, digits and '-'`);
  if (!NAME_RE.test(f.prefix)) throw new UsageError(`--prefix ${f.prefix}: use lowercase letters, digits and '-'`);
  const poolErr = validatePool(f.subnetPool);
  if (poolErr) throw new UsageError(poolErr);
  const concurrency = wholeNumber('--concurrency', f.concurrency, 1, 64);
  const d = durations(f);
  ipv4('--publish-host', f.publishHost);
  if (f.retries !== undefined) wholeNumber('--retries', f.retries, 0, 100);
  // Docker reads a bind mount as source:target:options: a ':' in the state dir breaks every file.
  if (paths.root.includes(':')) throw new UsageError(`--state-dir ${paths.root}: must not contain ":" (rendered files are bind-mounted from it)`);
  const maxDeletions = parseMaxDeletions(f);
  let openSource: PassOptions['openSource'];
  let tracker: GitTracker | undefined;
  if (f.git) {
    if (f.allowOutside) throw new UsageError('--allow-outside does not apply to --git: a revision has no directory on disk');
    const t = (tracker = gitTracker({ ...f, git: f.git }, paths));
    openSource = () => t.openSource();
  } else {
    const dir = path.resolve(f.dir);
    // Compared with links resolved: a state dir reached through a link into --dir is inside it too.
    if (isInside(realish(paths.root), realish(dir))) throw new UsageError(`--state-dir ${paths.root} is inside --dir ${dir}: bottled's own writes would look like spec changes`);
    if (isInside(realish(dir), realish(paths.root))) throw new UsageError(`--dir ${dir} is inside --state-dir ${paths.root}: bottled writes there, and would read its own files as specs`);
    const source = new DirSource(dir, !!f.allowOutside);
    openSource = async () => source;
  }
  return {
    openSource,
    tracker,
    maxDeletions,
    selector: selectorOf(f),
    drivers: agentDrivers({ smolvm: f.smolvm, dockerHost: f.dockerHost ?? process.env.DOCKER_HOST }),
    paths,
    prefix: f.prefix,
    instance: f.instance,
    subnetPool: f.subnetPool,
    publishHost: f.publishHost,
    allowEmpty: !!f.allowEmpty,
    allowOutside: !!f.allowOutside,
    adopt: !!f.adopt,
    secretsFile: f.secretsFile,
    concurrency,
    waitTimeoutMs: d.waitTimeout,
    stopTimeoutSec: 10,
    dryRun: !!f.dryRun,
  };
}

/**
 * Defaults: watch mode acts unattended on every file event (a `git checkout` of the wrong branch,
 * an `rm` in the wrong directory), so it removes at most 3 bottles a pass; `--once` runs after a
 * deliberate change (cron, a merge hook, a human after `plan`), so it allows 20.
 */
function parseMaxDeletions(f: CommonFlags): number {
  if (f.maxDeletions === undefined) return 20; // watch mode lowers it to 3 (cmdReconcile)
  if (f.maxDeletions === 'unlimited') return Infinity;
  if (!/^\d+$/.test(f.maxDeletions)) throw new UsageError(`--max-deletions ${f.maxDeletions}: a whole number >= 0, or 'unlimited'`);
  return Number(f.maxDeletions);
}

function statePaths(f: CommonFlags): StatePaths {
  return new StatePaths(f.stateDir ?? defaultStateDir());
}

async function connectDocker(f: CommonFlags): Promise<DockerDriver> {
  const docker = new DockerDriver({ host: f.dockerHost ?? process.env.DOCKER_HOST });
  await docker.ping();
  return docker;
}

function color(): boolean {
  return !!process.stdout.isTTY && !process.env.NO_COLOR;
}

/**
 * Bring the git source up to date once (fetch a remote, resolve a local ref, verify the commit)
 * and say what is wrong with it, if anything: a failed fetch or a refused revision changes
 * nothing, but the command says so and exits 1.
 */
async function refreshSource(t: GitTracker | undefined): Promise<string | undefined> {
  if (!t) return undefined;
  const r = await t.refresh();
  const keeps = t.applied ? `${t.applied.slice(0, 12)} stays applied` : 'nothing is applied';
  if (r.error) return `${t.describe}: ${r.error}: ${keeps}`;
  if (r.refused) return `${t.describe}: revision ${r.refused.revision.slice(0, 12)} is not applied: ${r.refused.problem}; ${keeps}`;
  return undefined;
}

async function cmdValidate(f: CommonFlags): Promise<number> {
  const t = f.git ? gitTracker({ ...f, git: f.git }, statePaths(f), false) : undefined;
  const problem = await refreshSource(t);
  if (problem) process.stderr.write(`bottled: ${problem}\n`);
  const source = t ? await t.openSource() : new DirSource(path.resolve(f.dir), !!f.allowOutside);
  const all = await loadSpecs(source, { allowOutside: !!f.allowOutside, prefix: f.prefix });
  const fleet = f.fleet ? fleetDiagnostics(all, await readFleet(f.fleet).catch(usage)) : [];
  const selected = selectDocuments(all, selectorOf(f));
  const load = { ...selected, diagnostics: [...selected.diagnostics, ...fleet] };
  if (f.json) {
    process.stdout.write(JSON.stringify({ valid: load.diagnostics.length === 0, files: load.fileCount, ...(load.selector !== undefined && { selector: load.selector }), bottles: [...load.bottles.keys()], sharedSidecars: [...load.shared.keys()], diagnostics: load.diagnostics }, null, 2) + '\n');
  } else {
    for (const d of load.diagnostics) process.stdout.write(formatDiagnostic(d, f.dir) + '\n');
    const n = load.bottles.size + load.shared.size;
    process.stderr.write(load.diagnostics.length
      ? `${load.diagnostics.length} problem${load.diagnostics.length > 1 ? 's' : ''} in ${load.fileCount} file${load.fileCount === 1 ? '' : 's'}\n`
      : `${load.fileCount} file${load.fileCount === 1 ? '' : 's'}, ${n} document${n === 1 ? '' : 's'}: valid\n`);
  }
  return load.diagnostics.length || problem ? EXIT.error : EXIT.ok;
}

async function cmdPlan(f: CommonFlags): Promise<number> {
  const paths = statePaths(f);
  const o = passOptions(f, paths);
  const docker = await connectDocker(f);
  const problem = await refreshSource(o.tracker);
  const obs = await observeAndPlan(o, docker, { createKey: false });
  if (f.json) process.stdout.write(JSON.stringify({ ...(planJson(obs.plan) as object), ...(problem && { source: problem }) }, null, 2) + '\n');
  else {
    for (const d of obs.load.diagnostics) process.stderr.write(formatDiagnostic(d, f.dir) + '\n');
    if (problem) process.stdout.write(`! source: ${problem}\n\n`);
    process.stdout.write(formatPlan(obs.plan, { color: color() }));
  }
  // The same verdict reconcile --once would reach on this input: a held failure or an invalid
  // file is an error (1) before pending changes (2).
  if (problem || obs.plan.units.some((u) => u.held?.failure || u.alerts?.length) || obs.load.diagnostics.length) return EXIT.error;
  return hasChanges(obs.plan) ? EXIT.changes : EXIT.ok;
}

async function cmdReconcile(f: CommonFlags): Promise<number> {
  // --once on a terminal: a live progress line, with the log scrolling above it.
  const tty = f.once && process.stderr.isTTY && process.env.LOG_PRETTY !== '1' && !f.dryRun ? new TtyLine() : undefined;
  const log = makeLogger(f.logLevel, tty);
  const paths = statePaths(f);
  const o = passOptions(f, paths);
  if (!f.once && f.maxDeletions === undefined) o.maxDeletions = 3;
  if (f.publishHost === '0.0.0.0') log.warn('--publish-host 0.0.0.0: sidecar ports are published on every address of this host, reachable from its networks');
  if (!f.once && f.adopt && !f.dryRun) throw new UsageError('--adopt is a deliberate one-time takeover: run it with reconcile --once (or plan), not in watch mode');
  // Reach the engine before touching the state dir: an unreachable engine changes nothing.
  const docker = await connectDocker(f);
  if (f.dryRun) {
    const problem = await refreshSource(o.tracker);
    if (problem) log.error(problem);
    // reconcile's exit codes, not plan's: 2 means invalid spec files here.
    const obs = await observeAndPlan(o, docker, { createKey: false });
    for (const d of obs.load.diagnostics) process.stderr.write(formatDiagnostic(d, f.dir) + '\n');
    process.stdout.write(formatPlan(obs.plan, { color: color() }));
    if (problem || obs.plan.units.some((u) => u.held?.failure)) return EXIT.error;
    return obs.load.diagnostics.length ? EXIT.invalid : EXIT.ok;
  }
  const op = f.once ? 'reconcile --once' : 'reconcile (watch)';
  const notifier = notifierOf(f, log); // a bad --notify is a usage error before the lock is taken
  o.notify = notifier?.send;
  const lock = await acquireLock(paths, { op, timeoutMs: durations(f).lockTimeout });
  try {
    await writeServes(paths, o.selector?.text);
    if (f.once) {
      // --once looks at the source once, before planning (watch mode on its own schedule).
      const problem = await refreshSource(o.tracker);
      if (problem) log.error(problem);
      const code = await reconcileOnce(f, o, docker, log, lock, tty);
      return problem && code !== EXIT.locked ? EXIT.error : code;
    }
    // Watch-mode modules (chokidar, prom-client, the event stream) load only when watching.
    const { watch } = await import('./watch.js');
    return await watch(f, o, docker, log, { lock, reacquire: () => acquireLock(paths, { op, timeoutMs: 0 }) });
  } finally {
    // Messages still in flight get one notify timeout more, after the lock is let go: a dead
    // receiver delays the exit by at most that, and the next reconciler not at all.
    await lock.release();
    await notifier?.drain(notifier.timeoutMs);
  }
}

async function reconcileOnce(f: CommonFlags, o: PassOptions, docker: DockerDriver, log: Logger, lock: HeldLock, tty?: TtyLine): Promise<number> {
  const killAfter = Number(process.env.BOTTLED_TEST_KILL_AFTER_STEPS ?? 0);
  let steps = 0;
  const controller = new Controller(
    {
      pass: o,
      once: { retries: wholeNumber('--retries', f.retries, 0, 100) },
      // Test hook (crash-safety tests): die hard after the Nth completed step.
      afterStep: killAfter > 0 ? () => { if (++steps >= killAfter) process.kill(process.pid, 'SIGKILL'); } : undefined,
      // On a terminal a line redrawn as it goes; elsewhere a log line every 5 s of a long pass.
      progress: (total) => new PassProgress(total, { tty, log }),
    },
    docker,
    log,
  );
  // Invariant 6: a lost lock stops the pass (at its next step), never crashes it.
  const lost = new Promise<'lost'>((resolve) => lock.lost.addEventListener('abort', () => resolve('lost'), { once: true }));
  lock.lost.addEventListener('abort', () => controller.pause(), { once: true });
  const first = await controller.start();
  for (const d of first.load.diagnostics) process.stderr.write(formatDiagnostic(d, f.dir) + '\n');
  const how = await Promise.race([controller.untilSettled().then(() => 'settled' as const), lost]);
  await controller.stop(how === 'lost' ? 10_000 : 0);
  if (how === 'lost' || lock.lost.aborted) {
    process.stderr.write(`bottled: the lock on ${o.paths.root} was taken away during the pass (${(lock.lost.reason as Error)?.message ?? 'compromised'}): stopped\n`);
    return EXIT.locked;
  }
  const failed = controller.failed();
  const t = controller.totals;
  log.info({ dockerCalls: docker.calls, swarmCalls: (o.drivers.get('swarm') as { calls?: number } | undefined)?.calls ?? 0, passMs: Math.round(t.passMs), passes: t.passes, maxRssKb: process.resourceUsage().maxRSS, executed: t.executed, bottles: first.plan.units.length, failed: failed.length }, 'pass finished');
  if (first.plan.pruneGuard) log.warn(first.plan.pruneGuard);
  if (failed.length) return EXIT.error;
  if ((controller.lastLoad ?? first.load).diagnostics.length) return EXIT.invalid;
  return EXIT.ok;
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('bottled')
    .description('Keeps AI agent sandboxes (bottles) running exactly as declared')
    .showHelpAfterError()
    .exitOverride();
  const run = (fn: (...a: never[]) => Promise<number>) => async (...args: unknown[]) => setExit(await (fn as (...a: unknown[]) => Promise<number>)(...args));
  common(
    program
      .command('validate')
      .description('parse and check every spec file')
      .option('--json', 'machine-readable output')
      .option('--fleet <file>', "the fleet's selectors, one a line: report bottles that none or two of them match"),
  ).action(run((f: CommonFlags) => cmdValidate(f)));
  common(program.command('plan').description('show what a reconcile would do, with causes').option('--json', 'machine-readable output')).action(run((f: CommonFlags) => cmdPlan(f)));
  common(
    program
      .command('reconcile')
      .description('converge what runs to what is declared; without --once, keep it so until SIGTERM')
      .option('--once', 'one pass (failing bottles retried --retries times), then exit')
      .option('--dry-run', 'print the plan, change nothing')
      .option('--retries <n>', 'with --once: retries of a failing bottle (backoff 1s, 2s, ...)', '2')
      .option('--resync <duration>', 'watch mode: full resync period (with jitter)', '60s')
      .option('--metrics-addr <host:port>', 'watch mode: serve Prometheus /metrics and /healthz')
      .option('--shutdown-timeout <duration>', 'watch mode: bound on finishing in-flight work at SIGTERM', '30s')
      .option('--smolvm-poll <duration>', 'watch mode: how often smolvm machines are checked (smolvm has no events)', '15s')
      .option('--git-interval <duration>', 'watch mode, remote --git: how often the remote is fetched (with jitter)', '1m')
      .option('--webhook-addr <host:port>', 'watch mode, --git: serve POST /hook (GitHub, Gitea/Forgejo, GitLab) to fetch at once')
      .option('--webhook-secret-file <file>', 'the shared secret of the webhook (required with --webhook-addr)')
      .option('--notify <url>', 'POST a JSON message on each Ready transition of a bottle (repeatable; also BOTTLED_NOTIFY)', (v: string, acc: string[]) => [...acc, v], [] as string[])
      .option('--notify-format <format>', 'json (default) or slack ({"text": …})'),
  ).action(run((f: CommonFlags) => cmdReconcile(f)));
  common(program.command('status [name]').description('conditions and resources per bottle').option('--json', 'machine-readable output').option('--source', 'the git source: revisions fetched, applied, verified, refused; fetch failures').option('--watch', 'redraw the table (or one bottle) as it changes, until Ctrl-C')).action(run((name: string | undefined, f: CommonFlags) => cmdStatus(name, f, statePaths(f))));
  common(program.command('exec <name> [command...]').description("run a command in a bottle's agent (or --container SIDECAR): interactive on a terminal").option('--container <sidecar>', 'a sidecar of the bottle instead of its agent')).action(run((name: string, command: string[], f: ExecFlags) => cmdExec(name, command, f)));
  common(program.command('logs <name>').description("a bottle's containers' logs, interleaved with a `name |` prefix").option('--container <name>', 'one sidecar (or agent)').option('-f, --follow', 'keep following (across a recreate) until Ctrl-C').option('--since <duration>', 'only lines this recent, e.g. 10m').option('--tail <n>', 'the last N lines of each container').option('--json', 'one JSON object a line')).action(run((name: string, f: LogsFlags) => cmdLogs(name, f)));
  program.command('schema').description('print the JSON Schema of spec v1').action(run(async () => {
    const { specJsonSchema } = await import('../specs/json-schema.js');
    process.stdout.write(JSON.stringify(specJsonSchema(), null, 2) + '\n');
    return EXIT.ok;
  }));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code = EXIT.ok as number;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith('commander.')) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? EXIT.ok : EXIT.error;
    }
    if (e instanceof LockHeldError) {
      process.stderr.write(`bottled: ${err.message}\n`);
      return EXIT.locked;
    }
    if (e instanceof DockerError && e.kind === 'unreachable') {
      process.stderr.write(`bottled: ${err.message}\n`);
      return EXIT.error;
    }
    process.stderr.write(`bottled: ${err.message}\n`);
    if (process.env.BOTTLED_DEBUG) process.stderr.write(`${err.stack}\n`);
    return EXIT.error;
  }
}
