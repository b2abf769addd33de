import path from 'node:path';
import os from 'node:os';

/** Default state dir per the contract: $XDG_STATE_HOME/bottled, else ~/.local/state/bottled. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'bottled');
}

/** Every path bottled writes under the state directory, in one place. */
export class StatePaths {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }
  get lock(): string {
    return path.join(this.root, 'lock');
  }
  get lockOwner(): string {
    return path.join(this.root, 'lock.owner');
  }
  get events(): string {
    return path.join(this.root, 'events.jsonl');
  }
  get owner(): string {
    return path.join(this.root, 'owner.json');
  }
  get hashKey(): string {
    return path.join(this.root, 'secret-hash.key');
  }
  get specCache(): string {
    return path.join(this.root, 'cache', 'specs.json');
  }
  /** Which bottles of the source the reconciler of this state directory serves (`--selector`). */
  get serves(): string {
    return path.join(this.root, 'serves.json');
  }
  /** What `--notify` has said about passes (held, released, applied), so it is not said twice. */
  get notifyState(): string {
    return path.join(this.root, 'notify.json');
  }
  get sourceStatus(): string {
    return path.join(this.root, 'source.json');
  }
  get imageCache(): string {
    return path.join(this.root, 'cache', 'images.json');
  }
  get bottlesDir(): string {
    return path.join(this.root, 'bottles');
  }
  get statusDir(): string {
    return path.join(this.root, 'status');
  }
  unitDir(name: string): string {
    return path.join(this.bottlesDir, name);
  }
  inventory(name: string): string {
    return path.join(this.unitDir(name), 'inventory.json');
  }
  status(name: string): string {
    return path.join(this.statusDir, `${name}.json`);
  }
  /** Host source of a bind-mounted file: <state>/bottles/<unit>/<container>/files/<path>. */
  renderedFile(unit: string, container: string, filePath: string): string {
    const rel = filePath.replace(/^\/+/, '');
    return path.join(this.unitDir(unit), container, 'files', rel);
  }
}

/** The state dir must never be inside the watched directory (our writes would retrigger us). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(path.resolve(parent), path.resolve(child));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
