// The backends bottled knows. The core asks here and names none of them: the Docker host
// (networks, sidecars, the docker agent) carries every action on a network, container or
// file; an agent backend (smolvm) carries its own workload's actions. A new agent backend is
// one folder under resources/, one entry in AGENT_BACKENDS and its action type in actions.ts.
import type { AgentBackend } from '../controller/backend.js';
import type { ExecContext, Save, StepOutcome } from '../controller/exec-context.js';
import type { Inventory } from '../state/inventory.js';
import type { BackendAction } from './actions.js';
import { dockerStep } from './docker/execute.js';
import { smolvmBackend } from './smolvm/backend.js';
import { SmolvmDriver } from './smolvm/driver.js';

// Each backend is typed with its own workload and driver; the core sees the common shape.
const AGENT_BACKENDS: readonly AgentBackend[] = [smolvmBackend as unknown as AgentBackend];

export function agentBackend(name: string): AgentBackend | undefined {
  return AGENT_BACKENDS.find((b) => b.name === name);
}

export function agentBackends(): readonly AgentBackend[] {
  return AGENT_BACKENDS;
}

/** The backend whose objects have this inventory type (`machine`), if any. */
export function agentBackendOfType(type: string): AgentBackend | undefined {
  return AGENT_BACKENDS.find((b) => b.resourceType === type);
}

/** Each agent backend's driver, from the command line (`--smolvm PATH`). */
export function agentDrivers(flags: { smolvm?: string }): Map<string, unknown> {
  return new Map<string, unknown>([['smolvm', new SmolvmDriver({ bin: flags.smolvm })]]);
}

export async function backendStep(a: BackendAction, inv: Inventory, ctx: ExecContext, save: Save): Promise<StepOutcome> {
  switch (a.on) {
    case 'network':
    case 'container':
    case 'file':
      return dockerStep(a, inv, ctx, save);
    default: {
      const b = agentBackendOfType(a.on);
      if (!b) throw new Error(`no backend carries out actions on ${a.on}`);
      return b.execute(a, inv, ctx, save);
    }
  }
}
