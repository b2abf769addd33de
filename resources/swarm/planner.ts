// Docker Swarm as a backend, its pure half: every container of the bottle is a one-replica
// service on the bottle's overlays (the overlays themselves are the core's networks).
import type { AgentPlanner } from '../../controller/backend.js';
import type { DesiredSwarmBottle } from './desired.js';
import { swarmHealth } from './health.js';
import type { ObservedConfig, ObservedService } from './observe-types.js';
import { planSwarm } from './plan.js';
import { renderSwarmBottle, renderSwarmShared } from './render.js';
import { removalBlocked, sharedLeaving } from './plan-shared.js';

export const swarmPlanner: AgentPlanner<DesiredSwarmBottle, ObservedService | ObservedConfig> = {
  name: 'swarm',
  resourceType: 'service',
  otherTypes: ['config', 'secret'],
  unavailable: 'SwarmUnavailable',
  render: renderSwarmBottle,
  renderShared: renderSwarmShared,
  leaving: sharedLeaving,
  removalBlocked,
  plan: planSwarm,
  // A config or secret cannot be removed while a service uses it: services go first.
  removal: (o, cause) =>
    o.type === 'config' || o.type === 'secret'
      ? ({ kind: 'remove', on: 'service', resource: { type: o.type, name: o.name }, cause } as ReturnType<AgentPlanner['removal']>)
      : { kind: 'remove', on: 'service', resource: { type: 'service', name: o.name }, cause },
  removalPhase: (o) => (o.type === 'service' ? 0 : 1),
  hardenedParts: (w) => w.services.map((s) => ({ name: s.name, role: s.role, component: s.component, security: s.security, env: s.env, outs: s.networks.slice(1).map((n) => n.network) })),
  health: swarmHealth,
};
