// The normalized, defaulted form of spec v1 that everything after the loader works with.
// The zod schema (schema.ts) parses YAML data into exactly these shapes; no other module
// looks at raw YAML. Durations are milliseconds, file modes are numbers.

export type OnChange =
  | { type: 'signal'; signal: string } // e.g. 'SIGHUP'
  | { type: 'exec'; command: string[] }
  | { type: 'restart' }
  | { type: 'recreate' };

export interface FileSpec {
  path: string; // absolute path inside the container / machine
  content: Buffer; // inline `content`, or the bytes of `source` read by the loader
  source?: string; // the `source:` as written, for messages (never re-read later)
  mode: number; // default 0o644
  uid?: number; // owner of the file as the container sees it (default: the container's user)
  gid?: number;
  onChange: OnChange; // default recreate
}

export interface HealthcheckSpec {
  test: string[]; // ["CMD", ...] | ["CMD-SHELL", "..."] | ["NONE"]
  intervalMs?: number;
  timeoutMs?: number;
  retries?: number;
  startPeriodMs?: number;
}

export interface ContainerCommon {
  image: string;
  command?: string[];
  env: Record<string, string>; // may hold ${sidecar.<n>.ip|host|port.<p>} placeholders
  secretEnv: Record<string, string>; // container var -> name of a variable in the reconciler's env
  files: FileSpec[];
  ports: number[];
  healthcheck?: HealthcheckSpec;
  init: boolean; // default true (bottled extension: `init: false` opts out)
  security?: SecuritySpec;
  /** An OCI runtime registered with the engine (runsc, kata-runtime, crun, sysbox-runc). */
  runtime?: string;
}

/** Over the hardened defaults of the container's role (controller/security.ts). */
export interface SecuritySpec {
  capAdd?: string[];
  capDrop?: string[];
  noNewPrivileges?: boolean;
  readOnlyRootfs?: boolean;
  /** 0: no limit. */
  pidsLimit?: number;
  /** Writable tmpfs paths besides /tmp, /run, /var/tmp and $HOME, with readOnlyRootfs. */
  writable?: string[];
  /** The user the container runs as (`1000`, `1000:1000`, `node`), instead of the image's. */
  user?: string;
}

/** Swarm's placement, as written (swarm backend only). */
export interface PlacementSpec {
  constraints: string[];
  preferences: { spread: string }[];
}

export interface SidecarSpec extends ContainerCommon {
  name: string;
  aliases: string[];
  ip?: string;
  egress: boolean;
  placement?: PlacementSpec;
}

export interface AgentSpec {
  image?: string; // required for docker backend; smolvm: image or from
  from?: string; // smolvm only; path as written (relative to the spec file)
  fromPath?: string; // absolute path resolved by the loader
  command?: string[];
  env: Record<string, string>;
  secretEnv: Record<string, string>;
  files: FileSpec[];
  networks: string[];
  resources?: { cpus?: number; memoryMiB?: number };
  init: boolean;
  placement?: PlacementSpec;
  /** What `bottled exec NAME` runs without a command. */
  shell?: string[];
  security?: SecuritySpec;
  runtime?: string;
}

export interface LifetimeSpec {
  /** ISO 8601 (UTC), normalized from the RFC 3339 time written. */
  expiresAt?: string;
  /** Milliseconds after the bottle's first creation. */
  ttl?: number;
  onExpiry: 'stop' | 'remove';
}

export interface BottleSpec {
  backend: 'docker' | 'smolvm' | 'swarm';
  suspend: boolean;
  network: { subnet?: string };
  sidecars: SidecarSpec[];
  agent: AgentSpec;
  uses: string[];
  lifetime?: LifetimeSpec;
}

export interface SharedSidecarSpec extends ContainerCommon {
  /** The loader always sets it (default docker). */
  backend?: 'docker' | 'swarm';
  placement?: PlacementSpec;
  alias: string; // default: metadata.name
}

export interface Metadata {
  name: string;
  labels: Record<string, string>;
}

/** Where a document came from: for messages, status and pruning guards. */
export interface Origin {
  file: string; // path relative to the spec root, e.g. "team/reviewer.yaml"
  line: number; // 1-based position of the document start
  col: number;
  revision?: string; // git commit when the source is a git revision
}

export interface BottleDoc {
  kind: 'Bottle';
  metadata: Metadata;
  spec: BottleSpec;
  origin: Origin;
}

export interface SharedSidecarDoc {
  kind: 'SharedSidecar';
  metadata: Metadata;
  spec: SharedSidecarSpec;
  origin: Origin;
}

export type SpecDoc = BottleDoc | SharedSidecarDoc;

export interface Diagnostic {
  file: string; // relative to the spec root
  line: number;
  col: number;
  message: string;
}

export function formatDiagnostic(d: Diagnostic, root?: string): string {
  const f = root ? `${root.replace(/\/$/, '')}/${d.file}` : d.file;
  return `${f}:${d.line}:${d.col}: ${d.message}`;
}

export interface LoadResult {
  bottles: Map<string, BottleDoc>; // valid documents only
  shared: Map<string, SharedSidecarDoc>;
  diagnostics: Diagnostic[];
  /** Names (kind/name) of documents that were found but are invalid: they are held, never pruned. */
  held: Map<string, Diagnostic[]>; // key `Bottle/<name>` or `SharedSidecar/<name>`
  /** Files that could not be read or parsed at all: anything that came from them is held. */
  brokenFiles: Set<string>;
  /**
   * Spec files that exist but hold no document at all (empty, or only comments): a file being
   * written (`generate > x.yaml`) looks like this for a moment, so what it declared is held.
   */
  emptyFiles?: Set<string>;
  /** How many spec files were found (0 means an empty source: nothing is pruned without --allow-empty). */
  fileCount: number;
  revision?: string;
  /** What was read, for messages: a directory path or `git:<repo>@<ref>:<subdir>`. */
  describe: string;
  /** `--selector` as served (normalised): documents that do not match are for other hosts. */
  selector?: string;
  /** Valid documents left out by the selector (`Bottle/<name>`, `SharedSidecar/<name>`). */
  elsewhere?: Set<string>;
  /** Valid documents (by `Bottle/<name>` key): where fields checked later are, for located holds. */
  positions?: Map<string, Record<string, { line: number; col: number }>>;
}
