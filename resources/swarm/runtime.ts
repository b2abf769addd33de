// Docker Swarm as a backend, its I/O half: one observation of the manager per pass, the Engine
// API's service and config calls for each step.
import type { AgentRuntime } from '../../controller/backend.js';
import { DockerError } from '../docker/errors.js';
import type { SwarmDriver } from './driver.js';
import { serviceStep } from './execute.js';
import { observeSwarm } from './observe.js';

export const swarmRuntime: AgentRuntime<SwarmDriver> = {
  name: 'swarm',
  resourceType: 'service',
  otherTypes: ['config', 'secret'],
  observe: observeSwarm,
  execute: (a, inv, ctx, save) => {
    if (a.on !== 'service') throw new Error(`swarm cannot carry out ${a.kind} of ${a.resource.type} ${a.resource.name}`);
    return serviceStep(a, inv, ctx, save);
  },
  reasonOf: (err) => (err instanceof DockerError && /swarm|manager/i.test(err.message) ? (err.kind === 'unreachable' ? 'SwarmUnavailable' : 'SwarmError') : undefined),
  // Drift between passes without the event stream: a service without its running task.
  poll: async (swarm) => {
    const { services, tasks } = await swarm.observe();
    const running = new Set(tasks.filter((t) => t.Status.State === 'running' && t.DesiredState === 'running').map((t) => t.ServiceID));
    return new Map(services.map((s) => [s.Spec.Name, running.has(s.ID)] as const));
  },
};
