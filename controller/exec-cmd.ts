// `bottled exec NAME [--container SIDECAR] [-- CMD ARGS...]`: step into a bottle, as
// `docker compose exec` / `kubectl exec` do. Interactive (TTY, raw mode, resize) when stdin and
// stdout are terminals; pipes both ways otherwise. The exit code is the command's.
import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { DockerDriver } from '../resources/docker/driver.js';
import { readInventory } from '../state/inventory.js';
import { StatePaths, defaultStateDir } from '../state/paths.js';
import { readStatus } from '../state/status.js';
import type { CommonFlags } from './cli-options.js';
import { UsageError } from './flags.js';
import { names } from './names.js';

export interface ExecFlags extends CommonFlags {
  container?: string;
}

/**
 * No command, no spec.agent.shell: the user's login shell in the container, from its passwd
 * entry (the image may have bash, or only sh), else /bin/sh.
 */
const LOGIN_SHELL = ['/bin/sh', '-c', 's=$(getent passwd "$(id -un 2>/dev/null)" 2>/dev/null | cut -d: -f7); case "$s" in *nologin|*/false|"") s=/bin/sh;; esac; [ -x "$s" ] || s=/bin/sh; exec "$s"'];

/** Exit code when bottled itself cannot run the command (as `docker exec` uses 126/127 for its own). */
const CANNOT = 125;

/**
 * A bottle and container name as the spec allows them: they become paths in the state directory
 * (`../x` must not read another file) and names on the engine.
 */
export function checkNames(name: string, container: string | undefined): void {
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(name)) throw new UsageError(`${JSON.stringify(name)} is not a bottle name (lowercase letters, digits and '-')`);
  if (container !== undefined && !/^[a-z][a-z0-9-]{0,19}$/.test(container)) throw new UsageError(`--container ${JSON.stringify(container)} is not a sidecar name (lowercase letters, digits and '-')`);
}

export async function cmdExec(name: string, cmd: string[], f: ExecFlags): Promise<number> {
  checkNames(name, f.container);
  const paths = new StatePaths(f.stateDir ?? defaultStateDir());
  const inv = await readInventory(paths, name);
  const say = (s: string) => process.stderr.write(`bottled: ${s}\n`);
  if (!inv) {
    say(`no bottle ${name} in ${paths.root} (is it declared, and reconciled with this --state-dir?)`);
    return CANNOT;
  }
  const target = f.container ? names.sidecar(f.prefix, name, f.container) : names.agent(f.prefix, name);
  const rec = inv.resources[target];
  if (!rec) {
    const have = Object.entries(inv.resources).filter(([, r]) => r.role === 'sidecar').map(([k]) => k.slice(`${f.prefix}-${name}-`.length));
    say(f.container ? `bottle ${name} has no sidecar ${f.container}${have.length ? ` (it has: ${have.sort().join(', ')})` : ''}` : `bottle ${name} has no agent yet`);
    return CANNOT;
  }
  // Say in one line when it is not Ready, and why, before trying: the command may still work.
  const st = await readStatus(paths, name);
  const ready = st?.conditions.find((c) => c.type === 'Ready');
  if (ready && ready.status !== 'True') say(`bottle ${name} is not Ready (${ready.reason}: ${ready.message.split('\n')[0]}); trying anyway`);
  const command = cmd.length ? cmd : rec.role === 'agent' && inv.shell?.length ? inv.shell : LOGIN_SHELL;
  switch (rec.type) {
    case 'container':
      // Into the container bottled made (its recorded ID), never one that took its name since.
      try {
        return await dockerExec(new DockerDriver({ host: f.dockerHost ?? process.env.DOCKER_HOST }), rec.id ?? target, command);
      } catch (e) {
        // bottled's own failure, told apart from the command's exit codes.
        const code = (e as { statusCode?: number }).statusCode;
        say(code === 404 ? `the ${f.container ? `sidecar ${f.container}` : 'agent'} container bottled made for ${name} is gone (run reconcile)` : code === 409 ? `${target} is not running` : (e as Error).message);
        return CANNOT;
      }
    case 'machine':
      return smolvmExec(f.smolvm ?? 'smolvm', target, command);
    case 'service': {
      const node = st?.resources.find((r) => r.name === target)?.node;
      say(`exec into a Swarm task is not available: it runs on ${node ? `node ${node}` : 'a node'}, whose engine bottled does not reach (the manager has no exec); run docker exec on that node`);
      return CANNOT;
    }
    default:
      say(`exec into a ${rec.type} is not available`);
      return CANNOT;
  }
}

async function dockerExec(docker: DockerDriver, container: string, command: string[]): Promise<number> {
  const tty = !!process.stdin.isTTY && !!process.stdout.isTTY;
  const ex = await docker.docker.getContainer(container).exec({ Cmd: command, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: tty });
  const stream = (await ex.start({ hijack: true, stdin: true, Tty: tty } as never)) as unknown as Duplex;
  const done = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
  });
  let restore = () => {};
  if (tty) {
    process.stdin.setRawMode(true);
    const resize = () => void ex.resize({ h: process.stdout.rows, w: process.stdout.columns }).catch(() => {});
    process.stdout.on('resize', resize);
    resize();
    stream.pipe(process.stdout);
    restore = () => {
      process.stdout.off('resize', resize);
      process.stdin.setRawMode(false);
    };
  } else {
    docker.docker.modem.demuxStream(stream, process.stdout, process.stderr);
  }
  // stdin's end half-closes the connection: the command sees EOF (`echo hi | bottled exec a -- cat`).
  process.stdin.pipe(stream);
  await done;
  restore();
  process.stdin.unpipe(stream);
  process.stdin.pause();
  const info = await ex.inspect();
  return info.ExitCode ?? CANNOT;
}

/** smolvm's own exec, with the flags smolvm-cli.md lists: `-i` always, `-t` on a terminal. */
async function smolvmExec(bin: string, machine: string, command: string[]): Promise<number> {
  const tty = !!process.stdin.isTTY && !!process.stdout.isTTY;
  const args = ['machine', 'exec', '--name', machine, '-i', ...(tty ? ['-t'] : []), '--', ...command];
  return new Promise((resolve) => {
    const p = spawn(bin, args, { stdio: 'inherit' });
    p.on('error', (e) => {
      process.stderr.write(`bottled: cannot run ${bin}: ${e.message}\n`);
      resolve(CANNOT);
    });
    p.on('close', (code, signal) => resolve(code ?? (signal ? 128 : CANNOT)));
  });
}
