// A remote GitOps repository (`--git https://…`, `ssh://…`, `user@host:path`, `git://…`,
// `file://…`), kept as a bare mirror in the state directory: only the ref bottled applies is
// fetched, nothing is ever checked out, and credentials never reach argv, a URL that is logged or
// stored, or the mirror's config.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { gitEnv } from './git-source.js';

/** Is `--git` a remote URL (not a path on this machine)? */
export function isRemoteUrl(spec: string): boolean {
  if (/^(https?|ssh|git|file):\/\//i.test(spec)) return true;
  // scp-like `user@host:path` or `host:path` (but not `C:\`, `./a:b` or an absolute path).
  return /^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:(?!\/\/)[^\\]/.test(spec) && !spec.startsWith('/') && !spec.startsWith('.');
}

/** The URL without any userinfo password, for messages and keys. Refuses embedded secrets. */
export function checkedUrl(url: string): string {
  const m = /^([a-z]+:\/\/)([^@/]*)@/i.exec(url);
  if (m && m[2]!.includes(':')) {
    throw new Error(`--git ${m[1]}${m[2]!.split(':')[0]}:…@…: a password in the URL would be logged and stored; put it in BOTTLED_GIT_PASSWORD or BOTTLED_GIT_TOKEN (environment or --secrets-file)`);
  }
  return url;
}

export interface RemoteAuth {
  /** https: basic auth; the token or password is only ever in git's environment. */
  username?: string;
  password?: string;
  /** ssh: private key file and the known-hosts file host keys are checked against. */
  sshKey?: string;
  knownHosts?: string;
}

export interface FetchResult {
  revision: string;
  /** What the mirror had for this ref before (undefined on the first fetch). */
  previous?: string;
  /** The new revision does not descend from the previous one (a forced push). */
  forced: boolean;
}

/** One remote, one bare mirror under `<state>/git/`, refs of its own per `--ref`. */
export class GitMirror {
  readonly dir: string;

  constructor(
    readonly url: string,
    stateRoot: string,
    private readonly auth: RemoteAuth,
  ) {
    checkedUrl(url);
    const key = crypto.createHash('sha256').update(url).digest('hex').slice(0, 16);
    this.dir = path.join(stateRoot, 'git', `${key}.git`);
  }

  /** The mirror's ref that tracks `ref` of the remote. */
  localRef(ref: string): string {
    return `refs/bottled/${crypto.createHash('sha256').update(ref).digest('hex').slice(0, 16)}`;
  }

  /** Fetch `ref` (a branch, a tag, HEAD or a full commit id) into the mirror, forced. */
  async fetch(ref: string, timeoutMs = 120_000): Promise<FetchResult> {
    await this.ensure();
    const local = this.localRef(ref);
    const previous = await this.rev(local);
    const r = await execa('git', ['-C', this.dir, ...this.configArgs(), 'fetch', '--no-tags', '--no-write-fetch-head', '--force', this.url, `+${ref}:${local}`], {
      env: this.env(),
      reject: false,
      timeout: timeoutMs,
      stdin: 'ignore',
    });
    if (r.exitCode !== 0 || r.timedOut) {
      throw new Error(`git fetch ${this.url} ${ref}: ${r.timedOut ? `no answer within ${timeoutMs / 1000} s` : mainLine(r.stderr) || `exit ${r.exitCode}`}`);
    }
    const revision = await this.rev(local);
    if (!revision) throw new Error(`git fetch ${this.url} ${ref}: the ref did not arrive`);
    let forced = false;
    if (previous && previous !== revision) {
      const anc = await execa('git', ['-C', this.dir, 'merge-base', '--is-ancestor', previous, revision], { env: gitEnv(this.dir), reject: false });
      forced = anc.exitCode !== 0;
    }
    return { revision, previous, forced };
  }

  private async ensure(): Promise<void> {
    try {
      await fs.access(path.join(this.dir, 'HEAD'));
    } catch {
      await fs.mkdir(path.dirname(this.dir), { recursive: true });
      const r = await execa('git', ['init', '-q', '--bare', this.dir], { env: gitEnv(this.dir), reject: false });
      if (r.exitCode !== 0) throw new Error(`git init ${this.dir}: ${mainLine(r.stderr)}`);
    }
  }

  private async rev(ref: string): Promise<string | undefined> {
    const r = await execa('git', ['-C', this.dir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { env: gitEnv(this.dir), reject: false });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** No helper may store or prompt for a credential; fetching never runs anything of the remote's. */
  private configArgs(): string[] {
    return ['-c', 'credential.helper=', '-c', 'core.askPass=', '-c', 'protocol.version=2', '-c', 'fetch.recurseSubmodules=false'];
  }

  /** Credentials travel in the environment of the one git process that needs them. */
  private env(): NodeJS.ProcessEnv {
    const extra: NodeJS.ProcessEnv = { GIT_ASKPASS: 'true', SSH_ASKPASS: 'true' };
    if (this.auth.password !== undefined) {
      const basic = Buffer.from(`${this.auth.username ?? 'x-access-token'}:${this.auth.password}`).toString('base64');
      extra.GIT_CONFIG_COUNT = '1';
      extra.GIT_CONFIG_KEY_0 = 'http.extraHeader';
      extra.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${basic}`;
    }
    // Host keys are checked against a known-hosts file and never accepted on first sight.
    const ssh = ['ssh', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes'];
    if (this.auth.knownHosts) ssh.push('-o', `UserKnownHostsFile=${quote(this.auth.knownHosts)}`);
    if (this.auth.sshKey) ssh.push('-o', 'IdentitiesOnly=yes', '-i', quote(this.auth.sshKey));
    extra.GIT_SSH_COMMAND = ssh.join(' ');
    return gitEnv(this.dir, extra);
  }
}

/** GIT_SSH_COMMAND is read by a shell: quote the paths. */
function quote(p: string): string {
  return `'${p.replace(/'/g, `'\\''`)}'`;
}

/** What went wrong, from git's stderr: the cause (ssh's own words first), not git's boilerplate after it. */
function mainLine(stderr: string): string {
  const boilerplate = /Could not read from remote repository|Please make sure you have the correct access rights|and the repository exists/;
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !boilerplate.test(l) && !l.startsWith('@@@'));
  const cause = lines.find((l) => /Host key|Permission denied|REMOTE HOST|Connection refused|Could not resolve|timed out/i.test(l));
  return (cause ?? lines.find((l) => l.startsWith('fatal:')) ?? lines[0] ?? '').replace(/^(fatal|error): /, '');
}
