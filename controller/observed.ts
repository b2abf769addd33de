import type { DockerSnapshot } from '../resources/docker/driver.js';

/** A workload as observed: enough for the core to prove who owns it. */
export interface ObservedWorkload {
  type: string;
  name: string;
  labels: Record<string, string>;
  /** False when the backend could not carry labels: such an object is never proven ours. */
  labelled: boolean;
}

/** One backend's part of a snapshot: its objects, or why it could not answer. */
export interface WorkloadObservation {
  objects: ObservedWorkload[];
  error?: string;
  /** The backend's own facts for its planner (e.g. artifact stamps); opaque to the core. */
  facts?: unknown;
}

/** One observation: Docker, plus each agent backend that some bottle needs, by backend name. */
export interface Observed extends DockerSnapshot {
  /** A backend absent here was not asked (no bottle of it) this pass. */
  workloads?: Map<string, WorkloadObservation>;
  /** The engine's registered OCI runtimes, asked only when a planned container names one. */
  runtimes?: string[];
}
