import pLimit, { type LimitFunction } from 'p-limit';
import { createActor, type ActorRefFrom } from 'xstate';
import type { Logger } from 'pino';
import type { DockerDriver } from '../resources/docker/driver.js';
import { DockerError } from '../resources/docker/errors.js';
import type { LoadResult } from '../specs/model.js';
import { lifecycleMachine, type LifecycleMachine, type PassOutcome } from './lifecycle.js';
import { fingerprints, outcomeOf } from './pass-outcome.js';
import { UnitRoutes } from './unit-routes.js';
import { observeAndPlan, runPass, specsOf, type PassOptions, type PassResult } from './pass.js';
import { DELETION_WINDOW_MS } from './plan.js';
import type { Metrics } from './metrics.js';
import { noteRetry } from './status-writer.js';
import type { PassProgress } from './progress.js';

export { fingerprints, outcomeOf } from './pass-outcome.js';

export interface ControllerOptions {
  pass: PassOptions;
  /** `--once`: stop when every bottle is settled; failing bottles get this many retries. */
  once?: { retries: number };
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  afterStep?: (unit: string) => void;
  metrics?: Metrics;
  /** Progress of a pass with this many units to change (undefined: not shown). */
  progress?: (total: number) => PassProgress | undefined;
}

type Actor = ActorRefFrom<LifecycleMachine>;

/**
 * The level-triggered controller: one lifecycle actor per bottle, one queue keyed by bottle
 * (a burst of requests collapses into one pass; a bottle is never reconciled twice at once),
 * bottles in parallel up to --concurrency. Watch mode and `--once` share this code path.
 */
export class Controller {
  readonly actors = new Map<string, Actor>();
  /** Which unit an event or a poll is about (learned from each pass). */
  readonly routes = new UnitRoutes();
  private readonly pending = new Map<string, number>(); // unit -> generation requested
  private readonly inflight = new Map<string, AbortController>();
  private readonly limit: LimitFunction;
  private fingerprint = new Map<string, string>();
  private seeding = false;
  /** The next batch also plans units that have no actor yet (a resync looks for leftovers). */
  private discover = false;
  private wake?: () => void;
  private stopping = false;
  private loopDone?: Promise<void>;
  private batches = new Set<Promise<void>>();
  engineDown = false;
  /** Totals for the `pass finished` log line and the bench. */
  readonly totals = { passes: 0, executed: 0, passMs: 0 };
  lastLoad?: LoadResult;
  private settledWaiters: (() => void)[] = [];

  constructor(
    private readonly o: ControllerOptions,
    private readonly docker: DockerDriver,
    private readonly log: Logger,
  ) {
    this.limit = pLimit(o.pass.concurrency);
  }

  /** --once: the first pass covers every unit (declared, inventoried or labelled) and seeds the actors. */
  async start(): Promise<PassResult> {
    const r = await this.pass(() => true);
    this.seed(r);
    this.loopDone = this.loop();
    return r;
  }

  /**
   * Watch mode: find every unit (one observation), give each an actor and let the queue run
   * their first passes, so a slow bottle never delays watching the others.
   */
  async startWatching(): Promise<void> {
    const obs = await observeAndPlan(this.o.pass, this.docker, { createKey: true });
    this.lastLoad = obs.load;
    this.fingerprint = fingerprints(obs.load);
    for (const u of obs.plan.units) {
      const a = this.spawn(u.unit);
      if (u.state === 'removed') a.send({ type: 'DELETED' });
    }
    this.loopDone = this.loop();
  }

  private seed(r: PassResult): void {
    r.plan.units.forEach((u, i) => {
      if (this.actors.has(u.unit)) return;
      const outcome = outcomeOf(u, r.results[i]!);
      if (outcome.kind === 'removed') return;
      // --once needs actors only for what is not settled yet (or failed): no actor for the in-sync many.
      if (this.o.once && (outcome.kind === 'ready' || outcome.kind === 'held')) return;
      this.spawnAfter(u.unit, outcome);
    });
  }

  /** An actor for a unit whose first pass already ran: its initial request is that pass. */
  private spawnAfter(unit: string, outcome: PassOutcome): void {
    this.seeding = true;
    const actor = this.spawn(unit);
    this.seeding = false;
    actor.send({ type: 'PASS_DONE', generation: 1, outcome });
  }

  private spawn(unit: string): Actor {
    const actor = createActor(
      lifecycleMachine({
        requestPass: (u, g) => {
          if (this.seeding) return;
          this.pending.set(u, g);
          this.wake?.();
        },
        abortPass: (u) => this.inflight.get(u)?.abort(),
        now: () => Date.now(),
        baseDelayMs: this.o.backoffBaseMs,
        maxDelayMs: this.o.backoffMaxMs,
      }),
      { input: { unit } },
    );
    let last = '';
    actor.subscribe({
      next: (s) => {
        const state = String(s.value);
        if (state === last) return;
        last = state;
        this.log.debug({ bottle: unit, state }, `bottle ${unit} is ${state}`);
        if (state === 'backoff') void noteRetry(this.o.pass.paths, unit, s.context.nextRetryAt, s.context.lastError);
        if (s.status === 'done') this.actors.delete(unit);
        this.o.metrics?.setConditions(this.stateCounts());
        this.checkSettled();
      },
      error: (err) => this.log.error({ bottle: unit, err }, 'lifecycle actor failed'),
    });
    this.actors.set(unit, actor);
    actor.start();
    return actor;
  }

  stateCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of this.actors.values()) {
      const v = String(a.getSnapshot().value);
      out[v] = (out[v] ?? 0) + 1;
    }
    return out;
  }

  /** Something happened to this unit (Docker event); `died`: a container to inspect, not trust the list for (it died, or a network event named it). */
  drift(unit: string, died?: string): void {
    if (died) {
      const s = this.reinspect.get(unit) ?? new Set<string>();
      this.reinspect.set(unit, s.add(died));
    }
    this.actors.get(unit)?.send({ type: 'DRIFT' });
  }
  private readonly reinspect = new Map<string, Set<string>>();

  /** Re-read the specs and tell each bottle whose input changed; new bottles get an actor. */
  async specsChanged(): Promise<void> {
    let load: LoadResult;
    try {
      load = await specsOf(this.o.pass, true);
    } catch (e) {
      this.log.error({ err: { message: (e as Error).message } }, 'cannot read the spec source: nothing changes');
      return;
    }
    this.lastLoad = load;
    const next = fingerprints(load);
    for (const [unit, fp] of next) {
      if (this.fingerprint.get(unit) === fp && this.actors.has(unit)) continue;
      const a = this.actors.get(unit);
      if (a) a.send({ type: 'SPEC_CHANGED' });
      else this.spawn(unit);
    }
    for (const unit of this.fingerprint.keys()) {
      if (!next.has(unit)) this.actors.get(unit)?.send({ type: 'DELETED' });
    }
    this.fingerprint = next;
  }

  /** Periodic safety net: every bottle that accepts it gets a pass; unknown labelled units are found. */
  resync(): void {
    for (const a of this.actors.values()) a.send({ type: 'RESYNC' });
    this.discover = true;
    this.wake?.();
  }

  engineBack(): void {
    this.engineDown = false;
    this.resync();
  }

  /**
   * The engine stopped answering: hold the queue and ping it with backoff (1 s doubling to
   * 30 s) until it answers, whether or not the event stream notices (a reset on one request
   * can happen while the stream stays up).
   */
  markEngineDown(): void {
    this.engineDown = true;
    if (this.probing) return;
    this.probing = true;
    void (async () => {
      let delay = 1000;
      while (this.engineDown && !this.stopping) {
        await new Promise((r) => setTimeout(r, delay).unref());
        try {
          await this.docker.ping();
          if (this.engineDown && !this.stopping) this.engineBack();
        } catch {
          delay = Math.min(delay * 2, 30_000);
        }
      }
      this.probing = false;
    })();
  }
  private probing = false;

  /**
   * Stop every pass (in flight at its next step, and new ones) until resume(): the state
   * directory's lock was taken away. Nothing of the bottles is touched meanwhile.
   */
  pause(): void {
    this.paused = true;
    this.halt.abort();
    this.halt = new AbortController();
  }

  resume(): void {
    this.paused = false;
    this.resync();
  }
  private paused = false;
  private readonly removedAt: number[] = [];
  private halt = new AbortController();

  private async pass(include: (unit: string) => boolean, units?: Map<string, number>): Promise<PassResult> {
    const aborts = new Map<string, AbortController>();
    for (const u of units?.keys() ?? []) {
      const ac = new AbortController();
      aborts.set(u, ac);
      this.inflight.set(u, ac);
    }
    const started = performance.now();
    const halt = this.halt.signal;
    const reinspect = new Set<string>();
    for (const u of units?.keys() ?? []) {
      for (const n of this.reinspect.get(u) ?? []) reinspect.add(n);
      this.reinspect.delete(u);
    }
    // Watch mode: removals add up over a window, so deleting files one at a time meets the guard too.
    const now = Date.now();
    while (this.removedAt.length && this.removedAt[0]! < now - DELETION_WINDOW_MS) this.removedAt.shift();
    const passOptions = this.o.once ? this.o.pass : { ...this.o.pass, recentDeletions: this.removedAt.length };
    try {
      const r = await runPass(passOptions, this.docker, this.log, {
        include,
        reinspect,
        progress: this.o.progress,
        limit: this.limit,
        signalFor: (u) => {
          const own = aborts.get(u)?.signal;
          return own ? AbortSignal.any([own, halt]) : halt;
        },
        afterStep: this.o.afterStep ? (u) => this.o.afterStep!(u) : undefined,
        // A removal counts from the moment it is planned: two files deleted in quick succession
        // must not both pass the guard because the first removal is still running.
        planned: (p) => {
          for (const u of p.units) if (u.state === 'removed') this.removedAt.push(Date.now());
        },
      });
      const ms = performance.now() - started;
      this.totals.passes++;
      this.totals.passMs += ms;
      this.totals.executed += r.results.reduce((n, x) => n + x.executed, 0);
      this.o.metrics?.observePass(r, ms / 1000);
      this.routes.learn(r);
      if (!this.o.once) this.armExpiry(r);
      return r;
    } finally {
      for (const u of aborts.keys()) if (this.inflight.get(u) === aborts.get(u)) this.inflight.delete(u);
    }
  }

  /**
   * Watch mode acts at the moment a bottle expires, not at the next resync: a timer per unit
   * with an upcoming expiry, set again by each of its passes. The time is an input like a
   * document: it reaches the unit as a spec change (also out of backoff or a stall).
   */
  private armExpiry(r: PassResult): void {
    for (const u of r.plan.units) {
      clearTimeout(this.expiryTimers.get(u.unit));
      this.expiryTimers.delete(u.unit);
      if (!u.expiry || u.expiry.expired) continue;
      // setTimeout holds at most ~24.8 days: a longer wait wakes early and arms again.
      const wait = Math.min(Math.max(0, Date.parse(u.expiry.at) - Date.now()) + 50, 2 ** 31 - 1);
      this.expiryTimers.set(u.unit, setTimeout(() => {
        this.expiryTimers.delete(u.unit);
        this.log.info({ bottle: u.unit, expiresAt: u.expiry!.at }, 'expiry due');
        this.actors.get(u.unit)?.send({ type: 'SPEC_CHANGED' });
      }, wait).unref());
    }
  }
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const ready = [...this.pending.keys()].filter((u) => !this.inflight.has(u));
      if ((ready.length === 0 && !this.discover) || this.engineDown || this.paused) {
        this.o.metrics?.setQueueDepth(this.pending.size);
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
        continue;
      }
      const batch = new Map(ready.map((u) => [u, this.pending.get(u)!] as const));
      for (const u of batch.keys()) this.pending.delete(u);
      const discover = this.discover;
      this.discover = false;
      const p = this.runBatch(batch, discover).finally(() => {
        this.batches.delete(p);
        this.wake?.();
      });
      this.batches.add(p);
      // Let bursts collapse: whatever arrives while this batch runs goes in the next one.
      await Promise.resolve();
    }
  }

  private async runBatch(batch: Map<string, number>, discover: boolean): Promise<void> {
    let r: PassResult;
    try {
      r = await this.pass((u) => batch.has(u) || (discover && !this.actors.has(u) && !this.inflight.has(u)), batch);
    } catch (e) {
      const down = e instanceof DockerError && e.kind === 'unreachable';
      if (down) {
        if (!this.engineDown) this.log.warn({ err: { message: (e as Error).message } }, 'Docker Engine unreachable: waiting for it');
        this.markEngineDown();
      } else {
        this.log.error({ err: { message: (e as Error).message } }, 'pass failed');
      }
      for (const [u, g] of batch) {
        this.actors.get(u)?.send({ type: 'PASS_DONE', generation: g, outcome: down ? { kind: 'engine-down' } : { kind: 'failed', reason: 'Failed', error: (e as Error).message } });
      }
      return;
    }
    this.lastLoad = r.load;
    r.plan.units.forEach((u, i) => {
      const g = batch.get(u.unit);
      const outcome = outcomeOf(u, r.results[i]!);
      if (g !== undefined) this.actors.get(u.unit)?.send({ type: 'PASS_DONE', generation: g, outcome });
      else if (!this.actors.has(u.unit) && outcome.kind !== 'removed') {
        // Discovered by a resync (e.g. labelled leftovers of a crash): give it an actor.
        this.spawnAfter(u.unit, outcome);
      }
    });
    if (r.results.some((x) => x.reason === 'DockerUnreachable')) this.markEngineDown();
  }

  /** --once: every bottle settled (ready, stalled, held, removed, or out of retries). */
  private settled(): boolean {
    if (this.pending.size || this.inflight.size || this.batches.size) return false;
    for (const a of this.actors.values()) {
      const s = a.getSnapshot();
      const v = String(s.value);
      if (v === 'reconciling' || v === 'deleting') return false;
      if (v === 'backoff' && s.context.attempt <= (this.o.once?.retries ?? 0)) return false;
    }
    return true;
  }

  private checkSettled(): void {
    if (!this.settledWaiters.length || !this.settled()) return;
    for (const w of this.settledWaiters.splice(0)) w();
  }

  async untilSettled(): Promise<void> {
    for (;;) {
      if (this.settled()) return;
      await new Promise<void>((r) => {
        this.settledWaiters.push(r);
        // Batches end outside actor transitions: poll cheaply as a backstop.
        setTimeout(r, 200).unref();
      });
    }
  }

  /** Units whose last pass failed (for the --once exit code). */
  failed(): string[] {
    return [...this.actors.entries()]
      .filter(([, a]) => {
        const s = a.getSnapshot();
        const v = String(s.value);
        // An invalid spec is reported as such (exit 2); a collision or missing secret is a failure.
        return v === 'backoff' || v === 'waitingForEngine' || (v === 'stalled' && s.context.stalledReason !== 'InvalidSpec');
      })
      .map(([u]) => u);
  }

  /** Stop taking work; let in-flight steps finish (bounded by the caller); leave bottles running. */
  async stop(graceMs: number): Promise<boolean> {
    this.stopping = true;
    for (const t of this.expiryTimers.values()) clearTimeout(t);
    this.wake?.();
    for (const a of this.actors.values()) a.stop();
    for (const ac of this.inflight.values()) ac.abort();
    const all = Promise.all([this.loopDone, ...this.batches]).then(() => true);
    const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref());
    return Promise.race([all, timeout]);
  }
}
