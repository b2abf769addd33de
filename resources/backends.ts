// The agent backends bottled knows, their pure half (render, plan, removal, health). The core
// asks here and names none of them. A new agent backend is one folder under resources/, one
// entry here and in runtimes.ts, and its action type in actions.ts. Nothing here does I/O:
// the planner's import closure stays free of drivers.
import type { AgentPlanner } from '../controller/backend.js';
import { smolvmPlanner } from './smolvm/planner.js';
import { swarmPlanner } from './swarm/planner.js';

// Each backend is typed with its own workload; the core sees the common shape.
const PLANNERS: readonly AgentPlanner[] = [smolvmPlanner as unknown as AgentPlanner, swarmPlanner as unknown as AgentPlanner];

export function agentBackend(name: string): AgentPlanner | undefined {
  return PLANNERS.find((b) => b.name === name);
}

export function agentBackends(): readonly AgentPlanner[] {
  return PLANNERS;
}

/** The backend whose objects have this inventory type (`machine`), if any. */
export function agentBackendOfType(type: string): AgentPlanner | undefined {
  return PLANNERS.find((b) => b.resourceType === type || b.otherTypes?.includes(type));
}
