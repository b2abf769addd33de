// What the executor learns from containers as they run now: readiness, and the values of
// `${sidecar.*}` placeholders that could not be known when the pass was planned.
import { AbortedError, ReadinessError } from '../../controller/errors.js';
import type { DesiredContainer } from '../../controller/desired.js';
import { substitutePlaceholders } from '../../specs/placeholders.js';
import type { DockerDriver } from './driver.js';

export type Inspected = Awaited<ReturnType<DockerDriver['inspectContainer']>>;

export interface RunningContext {
  docker: DockerDriver;
  publishHost: string;
  waitTimeoutMs: number;
  signal?: AbortSignal;
}

/** Wait (bounded) until each container runs, and is healthy when it has a healthcheck. */
export async function waitReady(containers: string[], ctx: RunningContext): Promise<void> {
  for (const name of containers) {
    const deadline = Date.now() + ctx.waitTimeoutMs;
    let delay = 100;
    for (;;) {
      if (ctx.signal?.aborted) throw new AbortedError();
      const info = await ctx.docker.inspectContainer(name);
      const st = info.State;
      const health = st.Health?.Status;
      if (st.Running && (!health || health === 'healthy')) break;
      if (!st.Running && st.Status !== 'created' && st.Status !== 'restarting') {
        throw new ReadinessError(`${name} is ${st.Status} (exit code ${st.ExitCode}) instead of running`);
      }
      if (health === 'unhealthy') throw new ReadinessError(`${name} is unhealthy`);
      if (Date.now() >= deadline) throw new ReadinessError(`${name} not ready after ${ctx.waitTimeoutMs} ms (${health ?? st.Status})`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 1000);
    }
  }
}

export async function inspectAll(containers: string[], ctx: RunningContext): Promise<Map<string, Inspected>> {
  const out = new Map<string, Inspected>();
  for (const c of new Set(containers)) out.set(c, await ctx.docker.inspectContainer(c));
  return out;
}

/** Resolve `${sidecar.*}` placeholders from the sidecars as they run now (fresh inspects). */
export function substituteFromRunning(
  owner: string,
  env: Record<string, string>,
  placeholders: DesiredContainer['placeholders'],
  running: Map<string, Inspected>,
  network: string,
  publishHost: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    const r = substitutePlaceholders(v, (ref) => {
      if (ref.field === 'host') return publishHost;
      const target = placeholders.find((p) => p.sidecar === ref.sidecar)?.target;
      const info = target ? running.get(target) : undefined;
      if (ref.field === 'ip') return info?.NetworkSettings.Networks?.[network]?.IPAddress || undefined;
      return (info?.NetworkSettings.Ports?.[`${ref.port}/tcp`] ?? []).find((b) => b.HostPort)?.HostPort;
    });
    if ('unresolved' in r) throw new ReadinessError(`${owner}: ${k} cannot be resolved yet (${r.unresolved.map((u) => `${u.sidecar}.${u.field}`).join(', ')})`);
    out[k] = r.value;
  }
  return out;
}

export async function resolveAtExecution(c: DesiredContainer, ctx: RunningContext): Promise<Record<string, string>> {
  const running = await inspectAll(c.placeholders.filter((p) => p.field !== 'host').map((p) => p.target), ctx);
  // Sidecars of a bottle share its bottle network, which is this container's primary one.
  return substituteFromRunning(c.name, c.env, c.placeholders, running, c.primary.network, ctx.publishHost);
}
