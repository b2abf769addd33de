import type { ObserveRequest } from '../../controller/backend.js';
import type { WorkloadObservation } from '../../controller/observed.js';
import type { SwarmDriver } from './driver.js';
import { observedShape, type RawServiceSpec } from './shape.js';
import type { ObservedConfig, ObservedService, TaskView } from './observe-types.js';

/**
 * One observation of the manager: services (with their task counts), nodes, our configs and secrets, and
 * the running tasks of our services. Five calls, whatever the number of bottles; a failure holds only
 * swarm bottles (SwarmUnavailable).
 */
export async function observeSwarm(swarm: SwarmDriver | undefined, _req: ObserveRequest): Promise<WorkloadObservation> {
  if (!swarm) return { objects: [], error: 'no swarm driver configured' };
  try {
    const { tasks, nodes, configs, secrets, all } = await swarm.observe();
    const hostname = new Map(nodes.map((n) => [n.ID, n.Description?.Hostname ?? n.ID]));
    const byService = new Map<string, TaskView[]>();
    for (const t of tasks) {
      const view: TaskView = { state: t.Status.State, desiredState: t.DesiredState, node: t.NodeID ? hostname.get(t.NodeID) ?? t.NodeID : undefined, message: t.Status.Err || (t.Status.State === 'running' ? undefined : t.Status.Message), createdAt: t.CreatedAt };
      byService.set(t.ServiceID, [...(byService.get(t.ServiceID) ?? []), view]);
    }
    // Every service, ours or not: one that is not ours but has a name of ours is a collision,
    // and one on a bottle's overlay a stranger the planner reports (by ownership, not by label).
    const objects: (ObservedService | ObservedConfig)[] = all.map((s) => ({
      type: 'service',
      name: s.Spec.Name,
      labels: s.Spec.Labels ?? {},
      labelled: true,
      service: {
        id: s.ID,
        running: s.ServiceStatus?.RunningTasks ?? 0,
        desired: s.ServiceStatus?.DesiredTasks ?? 0,
        configs: (s.Spec.TaskTemplate?.ContainerSpec?.Configs ?? []).flatMap((c) => c.ConfigName ?? []),
        networks: (s.Spec.TaskTemplate?.Networks ?? []).map((n) => n.Target),
        tasks: (byService.get(s.ID) ?? []).sort((a, b) => b.createdAt.localeCompare(a.createdAt)),
        updating: s.UpdateStatus?.State === 'updating',
        update: s.UpdateStatus?.State ? { state: s.UpdateStatus.State, message: s.UpdateStatus.Message } : undefined,
        shape: observedShape(s.Spec as RawServiceSpec),
      },
    }));
    for (const c of configs) objects.push({ type: 'config', name: c.Spec.Name, labels: c.Spec.Labels ?? {}, labelled: true, configId: c.ID });
    for (const c of secrets) objects.push({ type: 'secret', name: c.Spec.Name, labels: c.Spec.Labels ?? {}, labelled: true, configId: c.ID });
    return { objects };
  } catch (e) {
    const msg = (e as Error).message;
    return { objects: [], error: /not a swarm manager|swarm mode/i.test(msg) ? `the engine at --docker-host is not a Swarm manager (${msg}): point --docker-host at a manager` : msg };
  }
}
