import { L } from '../../controller/labels.js';
import type { SnapshotIndex } from '../../controller/plan-index.js';
import type { UnitPlan } from '../../controller/plan-types.js';
import type { ResourceStatus } from '../../state/status.js';
import type { DesiredSwarmBottle } from './desired.js';
import type { ObservedService } from './observe-types.js';

/**
 * Each service's truth for status: the node its task runs on, or the task that does not run and
 * Swarm's words for why (`no suitable node`, a missing image on the node).
 */
export function swarmHealth(u: UnitPlan, w: DesiredSwarmBottle, index: SnapshotIndex): ResourceStatus[] {
  const planned = new Map(u.actions.flatMap((a) => (a.on === 'service' && (a.kind === 'create' || a.kind === 'update') ? [[a.resource.name, a.service.hash] as const] : [])));
  return w.services.map((s): ResourceStatus => {
    const found = index.workloadsByName.get(s.name) as ObservedService | undefined;
    const o = found && index.owns(u.unit, found) ? found : undefined;
    if (!o) return { type: 'service', name: s.name, health: 'missing' };
    const want = planned.get(s.name);
    if (want && o.labels[L.specHash] !== want) return { type: 'service', name: s.name, health: 'drifted', detail: 'spec hash differs' };
    // A paused or rolled-back update left the old task running on the old spec: not converged.
    const upd = o.service.update;
    if (upd && (upd.state === 'paused' || upd.state.startsWith('rollback'))) return { type: 'service', name: s.name, health: 'drifted', detail: `update ${upd.state}${upd.message ? `: ${upd.message}` : ''}` };
    const running = o.service.tasks.find((t) => t.state === 'running' && t.desiredState === 'running');
    if (running) return { type: 'service', name: s.name, health: 'running', node: running.node, detail: running.node ? `on ${running.node}` : undefined };
    // The newest task that got somewhere, else the newest: a successor waiting out the restart
    // delay has no words yet; the one that failed before it has Swarm's.
    const t = o.service.tasks.find((x) => x.message) ?? o.service.tasks[0];
    if (!t) return { type: 'service', name: s.name, health: 'stopped', detail: 'no task' };
    const starting = ['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting'].includes(t.state) && !t.message?.match(/no suitable node|no such image|not found|error/i);
    return { type: 'service', name: s.name, health: starting ? 'starting' : 'stopped', node: t.node, detail: `task ${t.state}${t.node ? ` on ${t.node}` : ''}${t.message ? `: ${t.message}` : ''}` };
  });
}
