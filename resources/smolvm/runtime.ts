// smolvm as a backend, its I/O half: one `machine ls --json` per pass, the CLI for each step.
import type { AgentRuntime } from '../../controller/backend.js';
import type { SmolvmDriver } from './driver.js';
import { SmolvmError } from './errors.js';
import { machineStep } from './execute.js';
import { observeMachines } from './observe.js';

export const smolvmRuntime: AgentRuntime<SmolvmDriver> = {
  name: 'smolvm',
  resourceType: 'machine',
  observe: observeMachines,
  execute: (a, inv, ctx, save) => {
    if (a.on !== 'machine') throw new Error(`smolvm cannot carry out ${a.kind} of ${a.resource.type} ${a.resource.name}`);
    return machineStep(a, inv, ctx, save);
  },
  // smolvm has no event stream: `machine ls --json` tells which machines stopped or vanished.
  // No usable smolvm is what the plan holds as SmolvmUnavailable; anything else is one call's failure.
  reasonOf: (err) => (err instanceof SmolvmError ? (err.kind === 'missing-binary' || err.kind === 'unsupported' ? 'SmolvmUnavailable' : 'SmolvmError') : undefined),
  poll: async (smolvm) => new Map((await smolvm.list()).map((m) => [m.name, m.state === 'running'] as const)),
};
