import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { ROOT } from './harness.js';

/**
 * Git servers of the test's own, on 127.0.0.1 only, each in a directory of the test's, stopped
 * by the test: `git daemon`, an sshd with throwaway host and client keys, and an https-less
 * smart-HTTP server (`git http-backend` behind basic auth) for credentials.
 */

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port: number, what: string, proc?: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc && proc.exitCode !== null) throw new Error(`${what} exited ${proc.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopProc(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
  if (p.exitCode === null) p.kill('SIGKILL');
}

/** A bare repository `name.git` under `base`, with a work tree beside it to commit and push from. */
export class TestRepo {
  readonly bare: string;
  readonly work: string;
  private readonly env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

  constructor(readonly base: string, name = 'specs') {
    this.bare = path.join(base, `${name}.git`);
    this.work = path.join(base, `${name}-work`);
  }

  async init(): Promise<this> {
    await fs.mkdir(this.base, { recursive: true });
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', this.bare]);
    execFileSync('git', ['init', '-q', '-b', 'main', this.work]);
    this.git('remote', 'add', 'origin', this.bare);
    return this;
  }

  git(...args: string[]): string {
    return execFileSync('git', ['-C', this.work, ...args], { env: this.env }).toString().trim();
  }

  async write(rel: string, text: string): Promise<void> {
    const f = path.join(this.work, rel);
    await fs.mkdir(path.dirname(f), { recursive: true });
    await fs.writeFile(f, text);
  }

  /** Commit everything and push to the bare repository; `sign`: an ssh key to sign with. */
  commitAndPush(msg: string, opts: { sign?: string; force?: boolean } = {}): string {
    this.git('add', '-A');
    const sign = opts.sign ? ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${opts.sign}`] : [];
    this.git(...sign, 'commit', '-q', '--allow-empty', ...(opts.sign ? ['-S'] : []), '-m', msg);
    this.git('push', '-q', ...(opts.force ? ['--force'] : []), 'origin', 'HEAD:main');
    return this.git('rev-parse', 'HEAD');
  }
}

export class GitDaemon {
  port = 0;
  private proc?: ChildProcess;
  constructor(readonly base: string) {}

  url(repo = 'specs'): string {
    return `git://127.0.0.1:${this.port}/${repo}.git`;
  }

  async start(): Promise<this> {
    this.port ||= await freePort();
    this.proc = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${this.base}`, '--listen=127.0.0.1', `--port=${this.port}`, this.base], { stdio: 'ignore' });
    await waitPort(this.port, 'git daemon', this.proc);
    return this;
  }

  async stop(): Promise<void> {
    await stopProc(this.proc);
  }
}

export function sshdBinary(): string | undefined {
  for (const p of ['/usr/sbin/sshd', path.join(ROOT, '.cache/tools/openssh/usr/sbin/sshd')]) if (existsSync(p)) return p;
  return undefined;
}

/** sshd on loopback, as root, with a host key and an authorized deploy key of the test's. */
export class TestSshd {
  port = 0;
  readonly hostKey: string;
  readonly clientKey: string;
  readonly knownHosts: string;
  private proc?: ChildProcess;

  constructor(readonly dir: string) {
    this.hostKey = path.join(dir, 'host_ed25519');
    this.clientKey = path.join(dir, 'deploy_ed25519');
    this.knownHosts = path.join(dir, 'known_hosts');
  }

  url(bare: string): string {
    return `ssh://root@127.0.0.1:${this.port}${bare}`;
  }

  async start(): Promise<this> {
    const bin = sshdBinary();
    if (!bin) throw new Error('no sshd (scripts/setup.sh unpacks one into .cache/tools)');
    await fs.mkdir(this.dir, { recursive: true });
    this.port = await freePort();
    for (const k of [this.hostKey, this.clientKey]) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k]);
    await fs.writeFile(path.join(this.dir, 'authorized_keys'), await fs.readFile(`${this.clientKey}.pub`));
    const hostPub = (await fs.readFile(`${this.hostKey}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
    await fs.writeFile(this.knownHosts, `[127.0.0.1]:${this.port} ${hostPub}\n`);
    const config = path.join(this.dir, 'sshd_config');
    await fs.writeFile(config, [
      `Port ${this.port}`, 'ListenAddress 127.0.0.1', `HostKey ${this.hostKey}`, `PidFile ${path.join(this.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(this.dir, 'authorized_keys')}`, 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password', 'UsePAM no', 'StrictModes no', 'PrintMotd no', 'AllowTcpForwarding no', 'X11Forwarding no',
      'PermitUserEnvironment no', 'Subsystem sftp none', '',
    ].join('\n'));
    await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation directory
    this.proc = spawn(bin, ['-D', '-e', '-f', config], { stdio: 'ignore' });
    await waitPort(this.port, 'sshd', this.proc);
    return this;
  }

  async stop(): Promise<void> {
    await stopProc(this.proc);
  }
}

/** Smart HTTP (`git http-backend`) on loopback, behind basic auth with one user and token. */
export class HttpGit {
  port = 0;
  readonly token = `tok-${crypto.randomBytes(8).toString('hex')}`;
  readonly user = 'deploy';
  /** Authorization headers seen (to show they arrive, never logged by the test). */
  authorized = 0;
  private server?: http.Server;

  constructor(readonly base: string) {}

  url(repo = 'specs'): string {
    return `http://127.0.0.1:${this.port}/${repo}.git`;
  }

  async start(): Promise<this> {
    const want = `Basic ${Buffer.from(`${this.user}:${this.token}`).toString('base64')}`;
    this.server = http.createServer((req, res) => {
      if (req.headers.authorization !== want) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end();
        return;
      }
      this.authorized++;
      const u = new URL(req.url ?? '/', 'http://x');
      const cgi = spawn('git', ['http-backend'], {
        env: { ...process.env, GIT_PROJECT_ROOT: this.base, GIT_HTTP_EXPORT_ALL: '1', PATH_INFO: u.pathname, QUERY_STRING: u.search.slice(1), REQUEST_METHOD: req.method ?? 'GET', CONTENT_TYPE: req.headers['content-type'] ?? '', REMOTE_USER: this.user },
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      req.pipe(cgi.stdin);
      const chunks: Buffer[] = [];
      cgi.stdout.on('data', (d: Buffer) => chunks.push(d));
      cgi.on('close', () => {
        const out = Buffer.concat(chunks);
        const sep = out.indexOf('\r\n\r\n');
        const head = out.subarray(0, sep).toString('latin1').split('\r\n');
        let status = 200;
        const headers: Record<string, string> = {};
        for (const h of head) {
          const [k, ...v] = h.split(':');
          if (!k) continue;
          if (k.toLowerCase() === 'status') status = Number(v.join(':').trim().split(' ')[0]);
          else headers[k] = v.join(':').trim();
        }
        res.writeHead(status, headers).end(out.subarray(sep + 4));
      });
    });
    this.port = await freePort();
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
