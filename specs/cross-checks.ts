// Rules that need more than one document, or the reconciler's --prefix: the resource names
// documents render to must not meet, and an agent must not join a network bottled manages.
import type { Entry } from './load-file.js';
import type { Position } from './yaml-positions.js';

interface NameUse {
  entry: Entry;
  what: string; // "sidecar b of bottle a"
  at: Position;
}

/** Adds diagnostics to the entries concerned (both sides of a collision become invalid). */
export function checkAcrossDocuments(entries: Entry[], prefix: string): void {
  const containers = new Map<string, NameUse[]>();
  const networks = new Map<string, NameUse[]>();
  const use = (m: Map<string, NameUse[]>, name: string, u: NameUse) => m.set(name, [...(m.get(name) ?? []), u]);
  const managed = new RegExp(`^${escape(prefix)}-.+-(net|egress)$`);
  // A swarm bottle joins only a swarm SharedSidecar (a service on overlays), any other only a container.
  const sharedBackend = new Map<string, string>();
  for (const e of entries) if (e.parsed?.kind === 'SharedSidecar' && !e.diagnostics.length) sharedBackend.set(e.parsed.metadata.name, e.parsed.spec.backend ?? 'docker');
  for (const entry of entries) {
    const doc = entry.parsed;
    if (!doc || entry.diagnostics.length) continue;
    const pos = (key: string) => entry.positions?.[key] ?? entry.origin;
    const n = doc.metadata.name;
    if (doc.kind === 'SharedSidecar') {
      use(containers, `${prefix}-shared-${n}`, { entry, what: `the container of SharedSidecar ${n}`, at: pos('metadata.name') });
      use(networks, `${prefix}-shared-${n}-net`, { entry, what: `the network of SharedSidecar ${n}`, at: pos('metadata.name') });
      continue;
    }
    if (doc.spec.backend !== 'smolvm') use(containers, `${prefix}-${n}`, { entry, what: `the agent of bottle ${n}`, at: pos('metadata.name') });
    const mine = doc.spec.backend === 'swarm' ? 'swarm' : 'docker';
    doc.spec.uses.forEach((u, i) => {
      const theirs = sharedBackend.get(u);
      if (theirs === undefined || theirs === mine) return;
      entry.diagnostics.push({ file: entry.file, ...pos(`spec.uses.${i}`), message: `spec.uses[${i}]: SharedSidecar ${u} runs on ${theirs}, and a ${doc.spec.backend} bottle can only use one with backend: ${mine}` });
    });
    doc.spec.sidecars.forEach((s, i) => use(containers, `${prefix}-${n}-${s.name}`, { entry, what: `sidecar ${s.name} of bottle ${n}`, at: pos(`spec.sidecars.${i}.name`) }));
    if (doc.spec.backend === 'swarm') {
      // A service name is a DNS label on its overlays: at most 63 characters.
      doc.spec.sidecars.forEach((s, i) => {
        const svc = `${prefix}-${n}-${s.name}`;
        if (svc.length > 63) entry.diagnostics.push({ file: entry.file, ...pos(`spec.sidecars.${i}.name`), message: `spec.sidecars[${i}].name: the service ${svc} would have ${svc.length} characters, more than the 63 Swarm allows: shorten the bottle or sidecar name` });
      });
    }
    use(networks, `${prefix}-${n}-net`, { entry, what: `the network of bottle ${n}`, at: pos('metadata.name') });
    if (doc.spec.sidecars.some((s) => s.egress)) use(networks, `${prefix}-${n}-egress`, { entry, what: `the egress network of bottle ${n}`, at: pos('metadata.name') });
    doc.spec.agent.networks.forEach((net, i) => {
      if (!managed.test(net)) return;
      const at = pos(`spec.agent.networks.${i}`);
      entry.diagnostics.push({
        file: entry.file,
        ...at,
        message: `spec.agent.networks[${i}]: ${net} is a network name bottled manages (--prefix ${prefix}): joining a bottle's own or another bottle's network would open the agent's seal`,
      });
    });
  }
  for (const [kind, m] of [['container', containers], ['network', networks]] as const) {
    for (const [name, uses] of m) {
      const docs = new Set(uses.map((u) => u.entry));
      if (docs.size < 2) continue;
      for (const u of uses) {
        const others = uses.filter((o) => o.entry !== u.entry).map((o) => `${o.what} (${o.entry.file}:${o.at.line}:${o.at.col})`).join(', ');
        u.entry.diagnostics.push({ file: u.entry.file, ...u.at, message: `${kind} name ${name} of ${u.what} is also ${others}: rename one of them` });
      }
    }
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
