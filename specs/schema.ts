// The zod schema of spec v1. Parsing a document yields the shapes of model.ts (durations in
// ms, modes as numbers, onChange normalized, defaults applied). Two things are left to the
// loader because they are I/O: the bytes of `source:` files and the absolute `agent.from`.
import { z } from 'zod';
import type { BottleSpec, Metadata, SharedSidecarSpec } from './model.js';
import {
  API_VERSION,
  commandList,
  dnsLabel,
  duration,
  agentNetworkName,
  envMap,
  healthcheck,
  imageReference,
  ipv4Address,
  ipv4Subnet,
  labelsMap,
  nonEmptyString,
  port,
  resourceName,
  secretEnvMap,
  sidecarName,
  strictObject,
  uniqueItems,
} from './fields.js';
import { fileEntry } from './file-entry.js';
import { checkBottle, checkContainer, checkSecurity, checkSharedSidecarBackend, checkSharedSidecarEnv, type Report } from './rules.js';

/** Adapts zod's refinement context to the zod-free `Report` the rules use. */
function reporter(ctx: z.RefinementCtx, input: unknown): Report {
  return (path, message, options) =>
    ctx.addIssue({ code: 'custom', path, message, input, ...(options?.at && { params: { at: options.at } }) });
}

/**
 * Cross-field rules read the parsed, typed values: run them only when every field below parsed
 * (an unknown key leaves the values intact). zod would otherwise run them after a failed
 * refinement, on raw input.
 */
const whenFieldsParsed = {
  when: (payload: z.core.ParsePayload) => payload.issues.every((issue) => issue.code === 'unrecognized_keys'),
};

// Linux capability names as Docker takes them (without CAP_), and ALL.
const CAPABILITIES = ['ALL', 'AUDIT_CONTROL', 'AUDIT_READ', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'BPF', 'CHECKPOINT_RESTORE', 'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'IPC_LOCK', 'IPC_OWNER', 'KILL', 'LEASE', 'LINUX_IMMUTABLE', 'MAC_ADMIN', 'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_RAW', 'PERFMON', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYSLOG', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_CHROOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT', 'SYS_PTRACE', 'SYS_RAWIO', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'WAKE_ALARM'] as const;
const capability = z.string().transform((v) => v.toUpperCase().replace(/^CAP_/, '')).pipe(z.enum(CAPABILITIES, { error: 'is not a Linux capability (e.g. NET_RAW, NET_BIND_SERVICE, SYS_PTRACE; or ALL)' }));
const security = strictObject({
  capAdd: z.array(capability).describe("capabilities added to Docker's defaults (each one widens the seal: plan says so)").optional(),
  capDrop: z.array(capability).describe('capabilities dropped (replaces the default list: [] keeps all of Docker\'s defaults)').optional(),
  noNewPrivileges: z.boolean().describe('setuid binaries do not elevate (default true)').optional(),
  readOnlyRootfs: z.boolean().describe('a read-only root filesystem; /tmp, /run, /var/tmp, $HOME and `writable` are tmpfs').optional(),
  pidsLimit: z.number().int({ error: 'must be a whole number' }).min(0, { error: 'must be 0 (no limit) or more' }).max(4_194_304, { error: 'must be at most 4194304' }).describe('most processes and threads at once (0: no limit; default 4096 agent, 1024 sidecars)').optional(),
  user: z.string().regex(/^([a-z_][a-z0-9_-]{0,31}|\d{1,10})(:([a-z_][a-z0-9_-]{0,31}|\d{1,10}))?$/, { error: 'must be a user (and group) as docker run --user takes them: 1000, 1000:1000, node or node:staff' }).describe("the user it runs as, instead of the image's (files it owns follow)").optional(),
  writable: z.array(z.string().regex(/^\/[^\0:,]*$/, { error: 'must be an absolute path without ":" or ","' })).describe('more tmpfs paths with readOnlyRootfs').optional(),
}).describe('hardening over the defaults (see the README)');
const ociRuntime = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { error: 'must be the name of a runtime registered with the engine, e.g. runsc' }).describe('an OCI runtime registered with the engine: runsc (gVisor), kata-runtime, crun, sysbox-runc');

const containerFields = {
  image: imageReference.describe('container image'),
  command: commandList.describe("replaces the image's CMD").optional(),
  env: envMap.describe('environment variables; values may use ${sidecar.<name>.ip|host|port.<p>}').default({}),
  secretEnv: secretEnvMap.describe("variable → name of a variable in the reconciler's environment").default({}),
  files: z.array(fileEntry).describe('files rendered by bottled and mounted into the container').default([]),
  ports: z.array(port).superRefine(uniqueItems(String)).describe('container ports to publish').default([]),
  healthcheck: healthcheck.optional(),
  init: z.boolean().describe('run an init process as PID 1 (bottled extension, default true)').default(true),
  security: security.optional(),
  runtime: ociRuntime.optional(),
};

// Swarm's own syntax, passed through: `node.labels.zone==a`, `node.role!=manager`.
const placementConstraint = z
  .string()
  .regex(/^(node\.(id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+)|engine\.labels\.[A-Za-z0-9_.-]+)\s*(==|!=)\s*[^\s=!][^\s]*$/, {
    error: 'must be a Swarm constraint: node.labels.<key>, node.hostname, node.role, node.id, node.platform.os|arch or engine.labels.<key>, then == or !=, then a value (e.g. node.labels.zone==a)',
  });
const placement = strictObject({
  constraints: z.array(placementConstraint).superRefine(uniqueItems(String)).describe('Swarm placement constraints, e.g. node.labels.zone==a').default([]),
  preferences: z.array(strictObject({ spread: z.string().regex(/^(node\.labels|engine\.labels)\.[A-Za-z0-9_.-]+$/, { error: 'must be node.labels.<key> or engine.labels.<key>' }) })).describe('Swarm placement preferences').default([]),
}).describe('where Swarm may run the container (swarm backend only)');

const sidecar = strictObject({
  name: sidecarName,
  ...containerFields,
  aliases: z.array(dnsLabel).describe('DNS names on the bottle network').default([]),
  ip: ipv4Address.describe('pinned address inside spec.network.subnet').optional(),
  egress: z.boolean().describe("also join the bottle's egress network").default(false),
  placement: placement.optional(),
}).superRefine((value, ctx) => checkContainer(value, reporter(ctx, value)), whenFieldsParsed);

const agent = strictObject({
  image: imageReference.describe('docker: container image; smolvm: image reference or path').optional(),
  from: nonEmptyString.describe('smolvm only: machine file relative to the spec file, instead of image').optional(),
  command: containerFields.command,
  env: containerFields.env,
  secretEnv: containerFields.secretEnv,
  files: containerFields.files,
  networks: z
    .array(agentNetworkName)
    .superRefine(uniqueItems(String))
    .describe('extra pre-existing Docker networks to join (docker backend)')
    .default([]),
  resources: strictObject({
    // Docker's own bounds: at least 0.01 CPUs and 6 MiB (below, the container fails to start).
    cpus: z.number().positive({ error: 'must be greater than 0', abort: true }).min(0.01, { error: 'must be at least 0.01' }).max(1024, { error: 'must be at most 1024' }).optional(),
    memoryMiB: z.number().int({ error: 'must be a whole number of MiB', abort: true }).positive({ error: 'must be greater than 0', abort: true }).min(6, { error: 'must be at least 6 (Docker refuses less)' }).max(2 ** 30, { error: 'must be at most 1073741824 (1 PiB)' }).optional(),
  }).optional(),
  init: containerFields.init,
  security: containerFields.security,
  runtime: containerFields.runtime,
  placement: placement.optional(),
  shell: commandList.describe('what `bottled exec NAME` runs when no command is given (default: the user\'s login shell, else /bin/sh)').optional(),
}).superRefine((value, ctx) => checkContainer(value, reporter(ctx, value)), whenFieldsParsed);

// RFC 3339 with a zone: a time without one means a different moment on every host.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const instant = z
  .string({ error: 'must be an RFC 3339 time with a zone, e.g. 2026-12-24T18:00:00Z (quote it)' })
  .regex(RFC3339, { error: 'must be an RFC 3339 time with a zone, e.g. 2026-12-24T18:00:00Z or 2026-12-24T19:00:00+01:00' })
  .refine(realInstant, { error: 'is not a real date and time' })
  .transform((v) => new Date(v).toISOString());

/** Date.parse rolls 2026-02-30 over into March: the fields are checked one by one. */
function realInstant(v: string): boolean {
  const [y, mo, d, h, mi, s] = v.split(/[-Tt :.Zz+]/).map(Number) as number[];
  const days = new Date(Date.UTC(y!, mo!, 0)).getUTCDate();
  return mo! >= 1 && mo! <= 12 && d! >= 1 && d! <= days && h! < 24 && mi! < 60 && s! < 60 && !Number.isNaN(Date.parse(v));
}

const TEN_YEARS_MS = 87_600 * 3_600_000;

const lifetime = strictObject({
  expiresAt: instant.describe('when the bottle expires (RFC 3339)').optional(),
  ttl: duration.refine((ms) => ms <= TEN_YEARS_MS, { error: 'must be at most 87600h (10 years)' }).describe('how long after its first creation the bottle expires, e.g. 8h').optional(),
  onExpiry: z.enum(['stop', 'remove']).describe('stop: containers stopped and kept; remove: removed like an undeclared bottle').default('stop'),
})
  .superRefine((value, ctx) => {
    const report = reporter(ctx, value);
    if (value.expiresAt === undefined && value.ttl === undefined) report([], 'needs expiresAt or ttl');
    if (value.expiresAt !== undefined && value.ttl !== undefined) report(['ttl'], 'give either expiresAt or ttl, not both', { at: 'key' });
  }, whenFieldsParsed)
  .describe('when the bottle expires, and what is done then');

const bottleSpec = strictObject({
  backend: z.enum(['docker', 'smolvm', 'swarm']).default('docker'),
  suspend: z.boolean().describe('true: bottled touches nothing of this bottle').default(false),
  network: strictObject({ subnet: ipv4Subnet.describe('IPv4 subnet in CIDR form, e.g. 192.168.211.0/24').optional() }).default({}),
  sidecars: z.array(sidecar).default([]),
  agent,
  uses: z.array(resourceName).superRefine(uniqueItems(String)).describe('names of SharedSidecars to connect').default([]),
  lifetime: lifetime.optional(),
}).superRefine((value, ctx) => checkBottle(value, reporter(ctx, value)), whenFieldsParsed);

const sharedSidecarSpec = strictObject({
  backend: z.enum(['docker', 'swarm']).describe('docker: a container; swarm: a service (used by swarm bottles)').default('docker'),
  ...containerFields,
  alias: dnsLabel.describe('DNS name on every bottle network it joins (default: metadata.name)').optional(),
  placement: placement.optional(),
}).superRefine((value, ctx) => {
  const report = reporter(ctx, value);
  checkContainer(value, report);
  checkSecurity(value.security, value.files, [], report);
  checkSharedSidecarEnv(value.env, report);
  checkSharedSidecarBackend(value, report);
}, whenFieldsParsed);

const metadata = strictObject({
  name: resourceName,
  labels: labelsMap.describe('copied onto resources as bottled.user.<key>').default({}),
});

const apiVersion = z.literal(API_VERSION, { error: `must be ${API_VERSION}` });

// The transforms below are typed with the model's shapes, so the compiler checks that what
// the schema produces stays assignable to model.ts.
export const bottleDocumentSchema = strictObject({
  apiVersion,
  kind: z.literal('Bottle'),
  metadata,
  spec: bottleSpec,
})
  .describe('A bottle: an agent and the sidecars that serve it')
  .transform(({ kind, metadata, spec }): ParsedBottle => ({ kind, metadata, spec }));

export const sharedSidecarDocumentSchema = strictObject({
  apiVersion,
  kind: z.literal('SharedSidecar'),
  metadata,
  spec: sharedSidecarSpec,
})
  .describe('A long-lived container that many bottles use')
  .transform(({ kind, metadata, spec }): ParsedSharedSidecar => {
    const { alias, ...container } = spec;
    return { kind, metadata, spec: { ...container, alias: alias ?? metadata.name } };
  });

/** A parsed document: the model's documents without `origin` (the loader adds it). */
export interface ParsedBottle {
  kind: 'Bottle';
  metadata: Metadata;
  spec: BottleSpec;
}
export interface ParsedSharedSidecar {
  kind: 'SharedSidecar';
  metadata: Metadata;
  spec: SharedSidecarSpec;
}
export type ParsedDocument = ParsedBottle | ParsedSharedSidecar;

export const documentSchemas = {
  Bottle: bottleDocumentSchema,
  SharedSidecar: sharedSidecarDocumentSchema,
} as const;
