import type { ActionBase, ResourceRef } from '../../controller/action-base.js';
import type { DesiredContainer, DesiredFile, DesiredNetwork, Endpoint } from '../../controller/desired.js';

export interface FileOwner {
  uid: number;
  gid: number;
}

export interface NetworkPayload {
  desired: DesiredNetwork;
  subnet: string;
  gateway: string;
  ipRange?: string;
  hash: string;
  config: Record<string, unknown>;
}

export interface ContainerPayload {
  desired: DesiredContainer;
  /** Undefined while a placeholder can only be resolved once a sidecar runs (executor resolves). */
  hash?: string;
  config?: Record<string, unknown>;
  /** Recreate only if the hash, resolved at execution, differs from the running container's. */
  verifyHash?: string;
  /** The image's STOPSIGNAL (or SIGTERM): set explicitly so a signal through the API keeps the restart policy. */
  stopSignal: string;
}

type Net = ActionBase & { on: 'network'; resource: ResourceRef<'network'> };
type Ctr = ActionBase & { on: 'container'; resource: ResourceRef<'container'> };

export type NetworkAction =
  | (Net & {
      kind: 'create' | 'recreate';
      network: NetworkPayload;
      /**
       * The network's ID when it already exists. Docker looks a network up by full ID before by
       * name, so a network *named* like another's ID would otherwise be mistaken for it.
       */
      networkId?: string;
    })
  | (Net & { kind: 'remove'; networkId?: string });

export type ContainerAction =
  | (Ctr & {
      kind: 'create' | 'recreate';
      container: ContainerPayload;
      /** Files written (in place) before the create, so the bind-mount sources exist. */
      fileWrites: DesiredFile[];
      /**
       * Owner of rendered files that name none: the container user's ids, or the image's user
       * name, resolved from the created container's /etc/passwd before it starts.
       */
      fileOwner?: FileOwner | { user: string };
      /** Containers that must be running (healthy if they have a check) before this runs. */
      waitFor: string[];
    })
  | (Ctr & {
      kind: 'connect';
      endpoint: Endpoint;
      /** The network exists already (agent.networks): connect by its observed ID. */
      networkId?: string;
      /** First disconnect a stale endpoint of the same network (a hard-killed run can leave one). */
      replaceStale?: boolean;
      waitFor?: string[];
    })
  | (Ctr & { kind: 'disconnect'; networkName: string; networkId?: string })
  | (Ctr & { kind: 'start'; waitFor?: string[] })
  /** signal / exec / restart deliver these files' content (recorded on success). */
  | (Ctr & { kind: 'signal'; signal: string; delivers: DesiredFile[] })
  | (Ctr & { kind: 'exec'; exec: string[]; delivers: DesiredFile[] })
  | (Ctr & { kind: 'restart'; delivers: DesiredFile[] })
  /** In-place change of the restart policy, without a restart. */
  | (Ctr & { kind: 'update'; restartPolicy: 'always' })
  /** Stopped and kept (expiry): Docker's restart policy off first, so an engine restart does not start it. */
  | (Ctr & { kind: 'stop' })
  | (Ctr & { kind: 'remove' });

/** A rendered file rewritten in place on the host (its container sees it through a bind mount). */
export interface FileAction extends ActionBase {
  on: 'file';
  kind: 'rewrite-file';
  resource: ResourceRef<'file'>;
  file: DesiredFile;
  fileOwner?: FileOwner;
}

export type DockerAction = NetworkAction | ContainerAction | FileAction;
