
/**
 * Every reason bottled writes: a hold's, a failed unit's, a status condition's. One union so
 * that a misspelt reason is a compile error rather than a unit that silently stops stalling.
 */
export type Reason =
  // Holds a retry cannot fix: the unit waits for its input to change.
  | 'InvalidSpec'
  | 'NameCollision'
  | 'SecretMissing'
  | 'SmolvmUnavailable'
  | 'SharedSidecarMissing'
  | 'SharedSidecarInUse'
  | 'SubnetUnavailable'
  | 'ArtifactMissing'
  | 'DeletionGuard'
  | 'NetworkForbidden'
  | 'NetworkInUse'
  | 'ForeignEndpoint'
  // Deliberate holds.
  | 'Suspended'
  | 'EmptySource'
  | 'SourceEmptied'
  | 'Expired'
  // Holds retried with backoff: the engine may change under them.
  | 'ImageMissing'
  | 'NetworkMissing'
  | 'NetworkAmbiguous'
  | 'RuntimeMissing'
  | 'SharedSidecarUnavailable'
  | 'DependencyNotReady'
  // A step that failed.
  | 'DockerUnreachable'
  | 'DockerError'
  | 'SmolvmError'
  | 'SwarmUnavailable'
  | 'SwarmError'
  | 'NotReady'
  | 'Aborted'
  | 'Failed'
  // Condition reasons of a unit that did not fail.
  | 'Progressing'
  | 'ProgressingWithRetry'
  | 'Succeeded';

export interface ReasonInfo {
  /** A retry cannot fix it: the unit waits for its input to change (status Stalled). */
  stalled: boolean;
  /** Makes `reconcile --once` exit 1. A hold decides per call site; this is its default. */
  failure: boolean;
  /** A deliberate hold: nothing failed, nothing to retry. */
  quiet: boolean;
  doc: string;
}

const stalled = (doc: string): ReasonInfo => ({ stalled: true, failure: true, quiet: false, doc });
const quiet = (doc: string): ReasonInfo => ({ stalled: false, failure: false, quiet: true, doc });
const retried = (doc: string): ReasonInfo => ({ stalled: false, failure: true, quiet: false, doc });
const fine = (doc: string): ReasonInfo => ({ stalled: false, failure: false, quiet: false, doc });

export const REASONS: Readonly<Record<Reason, ReasonInfo>> = {
  // Invalid files are reported as such (exit 2), not as a failed bottle.
  InvalidSpec: { ...stalled('a spec file of the unit cannot be read, parsed or validated'), failure: false },
  NameCollision: stalled('a resource with one of its names exists and is not provably its own'),
  SecretMissing: stalled('a secretEnv names a variable that is not set'),
  SmolvmUnavailable: stalled('smolvm is missing, too old, or cannot list its machines'),
  SharedSidecarMissing: stalled('it uses a SharedSidecar that no document declares'),
  SharedSidecarInUse: stalled('a SharedSidecar no longer declared here is still joined to a bottle that stays'),
  SubnetUnavailable: stalled('no subnet can be given to one of its networks'),
  ArtifactMissing: stalled('agent.from names a file that does not exist'),
  DeletionGuard: stalled('the pass would remove more than --max-deletions allows'),
  NetworkForbidden: stalled('agent.networks names a network bottled manages or Docker owns'),
  NetworkInUse: stalled("someone else's container is attached to a network that must change"),
  ForeignEndpoint: stalled("someone else's container sits on one of its sealed networks"),
  Suspended: quiet('spec.suspend is true'),
  EmptySource: quiet('the source holds no spec files and --allow-empty is not given'),
  SourceEmptied: quiet('its file holds no documents now: taken for a file being written'),
  Expired: quiet('spec.lifetime says its time is over: stopped and kept, or removed'),
  ImageMissing: retried('an image is not on the engine (bottled does not pull)'),
  NetworkMissing: retried('agent.networks names a network that does not exist'),
  RuntimeMissing: retried('a container asks for an OCI runtime the engine has not registered'),
  NetworkAmbiguous: retried('agent.networks names a network that more than one network is named'),
  SharedSidecarUnavailable: retried("a used SharedSidecar's container name is taken by another container"),
  DependencyNotReady: retried('a placeholder cannot be resolved from what runs'),
  DockerUnreachable: retried('the Docker Engine does not answer'),
  DockerError: retried('the Docker Engine refused a step'),
  SmolvmError: retried('smolvm failed a step'),
  // A manager may regain quorum, or the engine join a swarm: retried, not stalled.
  SwarmUnavailable: retried('the engine at --docker-host is not a Swarm manager that answers'),
  SwarmError: retried('the Swarm manager refused a step'),
  NotReady: retried('a sidecar did not become ready, or a resource is still starting'),
  // Superseded by a newer spec or stopped on purpose: a new pass is already asked for.
  Aborted: fine('the pass was aborted'),
  Failed: retried('a step failed'),
  Progressing: fine('changes applied, resources are still starting'),
  ProgressingWithRetry: fine('a failed unit that will be retried (Reconciling condition)'),
  Succeeded: fine('in sync'),
};

const reasonsWhere = (k: 'stalled' | 'quiet'): ReadonlySet<Reason> => new Set((Object.keys(REASONS) as Reason[]).filter((r) => REASONS[r][k]));

/** Reasons that a retry cannot fix: the unit waits for its input to change (Stalled). */
export const STALLED_REASONS = reasonsWhere('stalled');

/** Deliberate holds: nothing failed, nothing to retry. */
export const QUIET_HOLDS = reasonsWhere('quiet');

export function isStalled(r: Reason): boolean {
  return REASONS[r].stalled;
}

export function isQuiet(r: Reason): boolean {
  return REASONS[r].quiet;
}
