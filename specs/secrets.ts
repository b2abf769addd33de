import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { parseEnv } from 'node:util';

/**
 * Secret values come from the reconciler's environment or a dotenv `--secrets-file` (which
 * wins), and are read only when a container is created. Elsewhere (hash labels, plan causes)
 * a secret appears only as an HMAC keyed with a per-state-dir key, so a label reader cannot
 * test guesses against it.
 */
export class Secrets {
  private constructor(
    /** From --secrets-file: wins over the environment. */
    private readonly fromFile: Map<string, string>,
    private readonly env: NodeJS.ProcessEnv,
    private readonly key: Buffer,
  ) {}

  private get(name: string): string | undefined {
    return this.fromFile.get(name) ?? this.env[name];
  }

  static async load(opts: { env?: NodeJS.ProcessEnv; secretsFile?: string; key: Buffer }): Promise<Secrets> {
    const values = new Map<string, string>();
    if (opts.secretsFile) {
      let text: string;
      try {
        text = await fs.readFile(opts.secretsFile, 'utf8');
      } catch (e) {
        throw new Error(`--secrets-file ${opts.secretsFile}: ${(e as Error).message}`);
      }
      for (const [k, v] of Object.entries(parseEnv(text))) if (v !== undefined) values.set(k, v);
    }
    return new Secrets(values, opts.env ?? process.env, opts.key);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** The value itself: only for the container create body (never logged, never in a URL). */
  value(name: string): string | undefined {
    return this.get(name);
  }

  digest(name: string): string | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    return this.digestOf(v);
  }

  /** The keyed digest of a value found elsewhere (a running container's env), to compare. */
  digestOf(value: string): string {
    return 'hmac-sha256:' + crypto.createHmac('sha256', this.key).update(value).digest('hex').slice(0, 32);
  }
}

/** The HMAC key of a state dir; created (0600) on first use, or ephemeral for read-only commands. */
export async function hashKey(file: string, create: boolean): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = crypto.randomBytes(32);
  if (!create) return key;
  try {
    await fs.writeFile(file, key, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFile(file);
    throw e;
  }
}
