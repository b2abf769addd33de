import type { EngineEvent } from '../resources/docker/events.js';
import { L } from './labels.js';
import { unitKey } from './unit-key.js';

/** Docker events that can mean a bottle drifted from its spec. */
const DRIFT_ACTIONS = new Set([
  'container:die', 'container:stop', 'container:destroy', 'container:pause', 'container:oom',
  'container:health_status: unhealthy', 'network:connect', 'network:disconnect', 'network:destroy',
  // A Swarm manager: a service changed or removed (by hand, or by us: the pass then finds nothing),
  // a node that went down or came back (its tasks move; status says where).
  'service:update', 'service:remove', 'node:update', 'node:remove',
]);

/** What the controller learned in its passes: network events carry no labels to route by. */
export interface UnitLookup {
  unitsOfNetwork(name: string): string[];
  unitOfContainer(id: string): string | undefined;
  /** The unit of an agent backend's object (a Swarm service) by name. */
  unitOfWorkload(backend: string, name: string): string | undefined;
  /** Every unit on an agent backend (a node event may concern any swarm bottle). */
  unitsOfBackend(backend: string): string[];
  /** Units kept stopped on purpose (expired): a container of theirs that starts is drift. */
  isStoppedOnPurpose?(unit: string): boolean;
}

/**
 * The units an event may concern. Routing only asks for a pass, and the pass proves ownership,
 * so it is generous: the instance label (or a network/container we saw in a unit) is enough.
 */
export function unitsOfEvent(e: EngineEvent, instance: string, lookup: UnitLookup): string[] {
  if (e.type === 'container') {
    const a = e.attributes;
    if (a[L.managedBy] !== 'bottled' || a[L.instance] !== instance) return [];
    const unit = unitKey.fromLabels(a);
    return unit ? [unit] : [];
  }
  if (e.type === 'service') {
    const unit = lookup.unitOfWorkload('swarm', e.attributes.name ?? '');
    return unit ? [unit] : [];
  }
  if (e.type === 'node') return lookup.unitsOfBackend('swarm');
  // Network events carry no labels: find the units by network name, and by the container that
  // was connected or disconnected (an agent connected by hand to a network of someone else's).
  const units = new Set(lookup.unitsOfNetwork(e.attributes.name ?? ''));
  const byContainer = e.attributes.container ? lookup.unitOfContainer(e.attributes.container) : undefined;
  if (byContainer) units.add(byContainer);
  return [...units];
}

/**
 * The drift an engine event reports: the units to give a pass, and (for a container that died, or
 * was connected or disconnected, which the list may not show yet) the container their pass must
 * inspect.
 */
export function driftOfEvent(e: EngineEvent, instance: string, lookup: UnitLookup): { units: string[]; died?: string } {
  if (e.type === 'container' && (e.action === 'start' || e.action === 'update')) {
    // Every create starts a container: only one of a bottle kept stopped is drift (started, or
    // its restart policy turned back on by hand).
    const units = unitsOfEvent(e, instance, lookup).filter((u) => lookup.isStoppedOnPurpose?.(u));
    return units.length ? { units, died: e.attributes.name } : { units };
  }
  if (!DRIFT_ACTIONS.has(`${e.type}:${e.action}`)) return { units: [] };
  // The list API can lag the event: a container that died, or was connected or disconnected, is
  // inspected by the pass instead (by name, or by ID for network events).
  const died = e.type === 'container' && (e.action === 'die' || e.action === 'oom') ? e.attributes.name : e.type === 'network' ? e.attributes.container : undefined;
  return { units: unitsOfEvent(e, instance, lookup), died };
}
