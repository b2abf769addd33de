// The I/O half of the backends: observing, executing, polling, and their drivers. The Docker
// host carries every action on a network, container or file; an agent backend its own.
import type { AgentRuntime } from '../controller/backend.js';
import type { ExecContext, Save, StepOutcome } from '../controller/exec-context.js';
import type { Inventory } from '../state/inventory.js';
import type { BackendAction } from './actions.js';
import { dockerStep } from './docker/execute.js';
import { SmolvmDriver } from './smolvm/driver.js';
import { smolvmRuntime } from './smolvm/runtime.js';
import { SwarmDriver } from './swarm/driver.js';
import { swarmRuntime } from './swarm/runtime.js';

const RUNTIMES: readonly AgentRuntime[] = [smolvmRuntime as unknown as AgentRuntime, swarmRuntime as unknown as AgentRuntime];

export function agentRuntimes(): readonly AgentRuntime[] {
  return RUNTIMES;
}

export function agentRuntime(name: string): AgentRuntime | undefined {
  return RUNTIMES.find((b) => b.name === name);
}

/**
 * Each agent backend's driver, from the command line (`--smolvm PATH`; Swarm's manager is the
 * engine at `--docker-host`). None connects before a bottle needs it.
 */
export function agentDrivers(flags: { smolvm?: string; dockerHost?: string }): Map<string, unknown> {
  return new Map<string, unknown>([
    ['smolvm', new SmolvmDriver({ bin: flags.smolvm })],
    ['swarm', new SwarmDriver({ host: flags.dockerHost })],
  ]);
}

/** Carry out one backend action: the core's executor knows no backend by name. */
export async function backendStep(a: BackendAction, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  switch (a.on) {
    case 'network':
    case 'container':
    case 'file':
      return dockerStep(a, inv, ctx, save);
    default: {
      const b = RUNTIMES.find((r) => r.resourceType === a.on || r.otherTypes?.includes(a.on));
      if (!b) throw new Error(`no backend carries out actions on ${a.on}`);
      return b.execute(a, inv, ctx, save);
    }
  }
}
