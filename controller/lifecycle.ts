import { assign, setup } from 'xstate';
import type { Reason } from './reasons.js';

/**
 * The lifecycle of one bottle in watch mode. The machine decides *when* a pass is wanted; the
 * controller runs passes (a keyed queue, one pass per bottle at a time) and reports back with
 * PASS_DONE. Actors are rebuilt from specs plus observation at start, never restored from
 * snapshots (pending `after` timers would be lost: xstate#5331).
 */

export type PassOutcome =
  | { kind: 'ready' } // converged (or converging: resources starting)
  | { kind: 'failed'; error: string; reason: Reason } // retry with backoff
  | { kind: 'stalled'; reason: Reason; message: string } // needs an input change
  | { kind: 'held'; reason: Reason; message: string } // suspended / empty source: wait for input
  | { kind: 'removed' }
  | { kind: 'aborted' } // superseded by a newer spec: a new pass is already requested
  | { kind: 'requeue' } // stopped early on purpose: plan again at once
  | { kind: 'engine-down' }; // not the bottle's fault: retried when the engine is back

export type LifecycleEvent =
  | { type: 'SPEC_CHANGED' } // its document (or its diagnostics) changed or appeared
  | { type: 'DELETED' } // no longer declared by a readable source
  | { type: 'DRIFT' } // a Docker event touched one of its resources
  | { type: 'RESYNC' } // periodic safety net
  | { type: 'PASS_DONE'; generation: number; outcome: PassOutcome };

export interface LifecycleContext {
  unit: string;
  attempt: number; // consecutive failed passes
  generation: number; // id of the pass last requested; stale reports are ignored
  lastError?: string;
  reason?: Reason;
  /** Consecutive passes that asked to plan again; bounded so a flapping sidecar cannot spin. */
  requeues: number;
  nextRetryAt?: number;
  stalledReason?: Reason;
}

export interface LifecycleDeps {
  /** Ask the controller for a pass (it may already be queued: requests collapse). */
  requestPass: (unit: string, generation: number) => void;
  /** Abort the unit's in-flight pass at its next step boundary. */
  abortPass: (unit: string) => void;
  now: () => number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export function backoffDelay(attempt: number, baseMs = 1000, maxMs = 300_000): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), maxMs);
}

export function lifecycleMachine(deps: LifecycleDeps) {
  const base = deps.baseDelayMs ?? 1000;
  const max = deps.maxDelayMs ?? 300_000;
  const current = ({ context, event }: { context: LifecycleContext; event: LifecycleEvent }) =>
    event.type === 'PASS_DONE' && event.generation === context.generation;
  const outcome = (k: PassOutcome['kind']) => ({ context, event }: { context: LifecycleContext; event: LifecycleEvent }) =>
    current({ context, event }) && event.type === 'PASS_DONE' && event.outcome.kind === k;

  return setup({
    types: {
      context: {} as LifecycleContext,
      events: {} as LifecycleEvent,
      input: {} as { unit: string },
    },
    actions: {
      request: assign({
        generation: ({ context }) => {
          const g = context.generation + 1;
          deps.requestPass(context.unit, g);
          return g;
        },
      }),
      abort: ({ context }) => deps.abortPass(context.unit),
      resetAttempts: assign({ attempt: 0, lastError: undefined, nextRetryAt: undefined, requeues: 0 }),
      countRequeue: assign({ requeues: ({ context }) => context.requeues + 1 }),
      recordFailure: assign(({ context, event }) => {
        const o = event.type === 'PASS_DONE' && event.outcome.kind === 'failed' ? event.outcome : undefined;
        const attempt = context.attempt + 1;
        return { attempt, lastError: o?.error, reason: o?.reason, nextRetryAt: deps.now() + backoffDelay(attempt, base, max) };
      }),
      recordStall: assign(({ event }) => {
        const o = event.type === 'PASS_DONE' && (event.outcome.kind === 'stalled' || event.outcome.kind === 'held') ? event.outcome : undefined;
        return { stalledReason: o?.reason, reason: o?.reason, lastError: o?.message, nextRetryAt: undefined };
      }),
    },
    guards: {
      isReady: outcome('ready'),
      isFailed: outcome('failed'),
      isStalled: outcome('stalled'),
      isSuspended: ({ context, event }) => outcome('held')({ context, event }) && event.type === 'PASS_DONE' && event.outcome.kind === 'held' && event.outcome.reason === 'Suspended',
      isHeld: outcome('held'),
      isRemoved: outcome('removed'),
      isEngineDown: outcome('engine-down'),
      isRequeue: ({ context, event }) => outcome('requeue')({ context, event }) && context.requeues < 3,
      isRequeueSpent: outcome('requeue'),
      // A collision can clear without a spec change (someone removes the other container):
      // the periodic resync may retry it; an invalid spec waits for its file.
      resyncRetries: ({ context }) => context.stalledReason !== 'InvalidSpec',
      // Held by someone else's container on the bottle's network: its leaving is a network
      // event of the bottle (a collision is not: its events are the other resource's).
      driftRetries: ({ context }) => context.stalledReason === 'ForeignEndpoint' || context.stalledReason === 'NetworkInUse' || context.stalledReason === 'SharedSidecarInUse',
      // An expired bottle is kept stopped: one of its containers started (by hand, by an engine
      // restart) is stopped again.
      keptStopped: ({ context }) => context.stalledReason === 'Expired',
    },
    delays: {
      backoff: ({ context }) => backoffDelay(context.attempt, base, max),
    },
  }).createMachine({
    id: 'bottle',
    context: ({ input }) => ({ unit: input.unit, attempt: 0, generation: 0, requeues: 0 }),
    initial: 'reconciling',
    states: {
      reconciling: {
        entry: 'request',
        on: {
          // The newest spec always wins: abort the pass in flight and start over.
          SPEC_CHANGED: { target: 'reconciling', reenter: true, actions: ['abort', 'resetAttempts'] },
          DELETED: { target: 'deleting', actions: ['abort', 'resetAttempts'] },
          // Something changed while the pass ran (maybe after it looked): look again afterwards.
          // The new generation makes the running pass's report stale.
          DRIFT: { actions: 'request' },
          RESYNC: { actions: 'request' },
          PASS_DONE: [
            { guard: 'isReady', target: 'ready', actions: 'resetAttempts' },
            { guard: 'isRequeue', target: 'reconciling', reenter: true, actions: 'countRequeue' },
            { guard: 'isRequeueSpent', target: 'ready', actions: 'resetAttempts' },
            { guard: 'isRemoved', target: 'removed' },
            { guard: 'isStalled', target: 'stalled', actions: 'recordStall' },
            { guard: 'isSuspended', target: 'suspended', actions: 'recordStall' },
            { guard: 'isHeld', target: 'held', actions: 'recordStall' },
            { guard: 'isFailed', target: 'backoff', actions: 'recordFailure' },
            { guard: 'isEngineDown', target: 'waitingForEngine' },
          ],
        },
      },
      deleting: {
        entry: 'request',
        on: {
          SPEC_CHANGED: { target: 'reconciling', actions: ['abort', 'resetAttempts'] },
          DRIFT: { actions: 'request' },
          PASS_DONE: [
            { guard: 'isRemoved', target: 'removed' },
            { guard: 'isReady', target: 'ready' },
            { guard: 'isHeld', target: 'held', actions: 'recordStall' },
            { guard: 'isStalled', target: 'stalled', actions: 'recordStall' },
            { guard: 'isFailed', target: 'backoff', actions: 'recordFailure' },
            { guard: 'isEngineDown', target: 'waitingForEngine' },
          ],
        },
      },
      ready: {
        on: {
          DELETED: 'deleting',
          SPEC_CHANGED: 'reconciling',
          DRIFT: 'reconciling',
          RESYNC: 'reconciling',
        },
      },
      backoff: {
        after: { backoff: 'reconciling' },
        on: {
          SPEC_CHANGED: { target: 'reconciling', actions: 'resetAttempts' },
          DELETED: { target: 'deleting', actions: 'resetAttempts' },
          // Drift and resync do not shorten a backoff: the timer is the retry.
        },
      },
      stalled: {
        on: {
          DELETED: 'deleting',
          SPEC_CHANGED: { target: 'reconciling', actions: 'resetAttempts' },
          RESYNC: { guard: 'resyncRetries', target: 'reconciling' },
          // What holds it may have moved (the foreign container left, the other one was removed).
          DRIFT: { guard: 'driftRetries', target: 'reconciling' },
        },
      },
      suspended: {
        on: {
          DELETED: 'deleting',
          SPEC_CHANGED: { target: 'reconciling', actions: 'resetAttempts' },
        },
      },
      held: {
        on: {
          DELETED: 'deleting',
          SPEC_CHANGED: { target: 'reconciling', actions: 'resetAttempts' },
          RESYNC: 'reconciling',
          DRIFT: { guard: 'keptStopped', target: 'reconciling' },
        },
      },
      waitingForEngine: {
        on: {
          DELETED: 'deleting',
          SPEC_CHANGED: 'reconciling',
          RESYNC: 'reconciling',
          DRIFT: 'reconciling',
        },
      },
      removed: { type: 'final' },
    },
  });
}

export type LifecycleMachine = ReturnType<typeof lifecycleMachine>;
