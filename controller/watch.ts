import path from 'node:path';
import type { Logger } from 'pino';
import type { DockerDriver } from '../resources/docker/driver.js';
import { DockerEventStream } from '../resources/docker/events.js';
import type { CommonFlags } from './cli-options.js';
import { EXIT } from './exit-codes.js';
import { Controller } from './controller.js';
import { durations } from './flags.js';
import { FileTrigger } from './file-trigger.js';
import { Metrics } from './metrics.js';
import type { PassOptions } from './pass.js';
import type { HeldLock } from '../state/lock.js';
import { driftOfEvent } from './docker-trigger.js';
import { PassProgress } from './progress.js';
import { SourceFollower } from './git-follow.js';
import { startWebhook } from './webhook.js';
import fs from 'node:fs/promises';
import { UsageError } from './flags.js';
import { agentRuntime } from '../resources/runtimes.js';

/** The webhook's shared secret: a file of its own, required (an open hook would let anyone poke). */
async function webhookSecret(f: CommonFlags): Promise<Buffer> {
  if (!f.webhookSecretFile) throw new UsageError('--webhook-addr needs --webhook-secret-file: a hook anyone could call would be refused by nobody');
  if (!f.git) throw new UsageError('--webhook-addr applies to --git: a push to the repository triggers a fetch');
  const secret = (await fs.readFile(f.webhookSecretFile)).toString('utf8').trim();
  if (secret.length < 16) throw new UsageError(`--webhook-secret-file ${f.webhookSecretFile}: at least 16 characters`);
  return Buffer.from(secret);
}

/** `bottled reconcile` without --once: run until SIGTERM/SIGINT, never tearing bottles down. */
export async function watch(
  f: CommonFlags,
  o: PassOptions,
  docker: DockerDriver,
  log: Logger,
  locking: { lock: HeldLock; reacquire: () => Promise<HeldLock> },
): Promise<number> {
  const d = durations(f);
  const resyncMs = d.resync!;
  const metrics = f.metricsAddr ? new Metrics() : undefined;
  // A large pass (a cold start of many bottles, a new commit for all of them) logs a summary every 5 s.
  const controller = new Controller({ pass: o, metrics, progress: (total) => (total >= 10 ? new PassProgress(total, { log }) : undefined) }, docker, log);
  let stopping = false;
  // Invariant 6: a lost lock stops passes (nothing is touched), and the daemon takes it back
  // once nobody else holds it; it never crashes on it.
  const guardLock = (held: HeldLock) => {
    held.lost.addEventListener('abort', () => {
      controller.pause();
      log.error({ err: { message: (held.lost.reason as Error)?.message } }, 'lost the lock on the state directory: passes stop until it is ours again');
      void (async () => {
        let delay = 1000;
        while (!stopping) {
          await new Promise((r) => setTimeout(r, delay).unref());
          try {
            const again = await locking.reacquire();
            locking.lock = again;
            guardLock(again);
            log.info('the lock is ours again: resyncing');
            controller.resume();
            return;
          } catch {
            delay = Math.min(delay * 2, 30_000);
          }
        }
      })();
    }, { once: true });
  };
  const firstLock = locking.lock;
  guardLock(locking.lock);
  let lastTick = Date.now();
  const events = new DockerEventStream(docker.docker, {
    onEvent: (e) => {
      const { units, died } = driftOfEvent(e, o.instance, controller.routes);
      for (const unit of units) {
        log.debug({ bottle: unit, event: `${e.type} ${e.action}` }, 'drift');
        controller.drift(unit, died);
      }
    },
    onConnected: (again) => {
      if (again) {
        log.info('Docker event stream is back: resyncing');
        controller.engineBack();
      }
    },
    onLost: (err, retryInMs) => {
      if (!controller.engineDown) log.warn({ err: { message: err.message } }, 'lost the Docker event stream: reconnecting with backoff');
      controller.markEngineDown();
      log.debug({ retryInMs }, 'event stream reconnect scheduled');
    },
  });
  // Specs change when the directory does, or (--git) when the applied revision moves: a local
  // repository's ref, a remote fetched on an interval or poked by a webhook, a verified commit.
  const follower = o.tracker ? new SourceFollower(o.tracker, () => controller.specsChanged(), log, d.gitInterval!) : undefined;
  const files = o.tracker ? undefined : new FileTrigger([path.resolve(f.dir)], () => void controller.specsChanged(), 300, true);
  const hook = f.webhookAddr ? await startWebhook(f.webhookAddr, await webhookSecret(f), () => follower?.poke(), log) : undefined;
  if (hook) log.info({ addr: hook.address }, 'serving POST /hook');
  if (follower) await follower.first();
  await controller.startWatching();
  events.start();
  await files?.start();
  await follower?.start();
  let resyncTimer: NodeJS.Timeout;
  const scheduleResync = () => {
    // Jitter (±10%) keeps several daemons from resyncing in step.
    const wait = resyncMs * (0.9 + Math.random() * 0.2);
    resyncTimer = setTimeout(() => {
      lastTick = Date.now();
      log.debug('resync');
      if (o.tracker && !o.tracker.remote) follower?.poke(); // the poll half of noticing new local commits
      controller.resync();
      scheduleResync();
    }, wait);
  };
  scheduleResync();
  // Agent backends without an event stream (smolvm) are polled for workloads that stopped or vanished.
  const pollMs = d.smolvmPoll!;
  const poll = setInterval(async () => {
    for (const [backend, byName] of controller.routes.workloads) {
      const b = agentRuntime(backend);
      const driver = o.drivers.get(backend);
      if (!byName.size || !b?.poll || !driver) continue;
      try {
        const running = await b.poll(driver);
        for (const [name, unit] of byName) {
          if (running.get(name) !== true) {
            log.debug({ bottle: unit, [b.resourceType]: name, state: running.has(name) ? 'not running' : 'missing' }, 'drift');
            controller.drift(unit);
          }
        }
      } catch (e) {
        log.debug({ err: { message: (e as Error).message } }, `${backend} poll failed`);
      }
    }
  }, pollMs);
  if (metrics) {
    const addr = await metrics.listen(f.metricsAddr!, () => events.connected && Date.now() - lastTick < resyncMs * 3);
    log.info({ addr }, 'serving /metrics and /healthz');
  }
  log.info({ source: o.tracker?.describe ?? path.resolve(f.dir), resyncMs, bottles: controller.actors.size }, 'watching');

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const hurry = () => {
    log.warn('second signal: exiting at once');
    process.exit(130);
  };
  process.once('SIGTERM', hurry);
  process.once('SIGINT', hurry);
  log.info({ signal }, 'shutting down: finishing the step in flight; bottles keep running');
  clearTimeout(resyncTimer!);
  clearInterval(poll);
  events.stop();
  await files?.stop();
  await follower?.stop();
  await hook?.close();
  metrics?.close();
  stopping = true;
  const clean = await controller.stop(d.shutdownTimeout!);
  if (!clean) log.warn('in-flight work did not finish within --shutdown-timeout');
  if (locking.lock !== firstLock) await locking.lock.release(); // the caller releases the first one
  log.info('stopped');
  return EXIT.ok;
}
