import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { checkedUrl, isRemoteUrl } from '../specs/git-remote.js';
import { EventLog } from '../state/events.js';
import type { StatePaths } from '../state/paths.js';
import { UsageError } from './flags.js';
import { GitTracker } from './git-tracker.js';

export interface GitFlags {
  git?: string;
  ref: string;
  subdir: string;
  secretsFile?: string;
  gitSshKey?: string;
  gitKnownHosts?: string;
  verifyCommits?: string;
}

/**
 * The git source a command reads: credentials for https come from BOTTLED_GIT_TOKEN (or
 * BOTTLED_GIT_USERNAME / BOTTLED_GIT_PASSWORD) in --secrets-file or the environment, never from
 * the URL or argv.
 */
export function gitTracker(f: GitFlags & { git: string }, paths: StatePaths, persist = true): GitTracker {
  const remote = isRemoteUrl(f.git);
  if (remote) {
    try {
      checkedUrl(f.git);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  for (const [flag, file] of [['--git-ssh-key', f.gitSshKey], ['--git-known-hosts', f.gitKnownHosts], ['--verify-commits', f.verifyCommits]] as const) {
    if (file && !fs.existsSync(file)) throw new UsageError(`${flag} ${file}: no such file`);
  }
  const secret = secretReader(f.secretsFile);
  return new GitTracker({
    spec: f.git,
    ref: f.ref,
    subdir: f.subdir,
    paths,
    verify: f.verifyCommits && path.resolve(f.verifyCommits),
    events: new EventLog(paths),
    persist,
    auth: remote
      ? {
          username: secret('BOTTLED_GIT_USERNAME'),
          password: secret('BOTTLED_GIT_TOKEN') ?? secret('BOTTLED_GIT_PASSWORD'),
          sshKey: f.gitSshKey && path.resolve(f.gitSshKey),
          knownHosts: f.gitKnownHosts && path.resolve(f.gitKnownHosts),
        }
      : undefined,
  });
}

function secretReader(file: string | undefined): (name: string) => string | undefined {
  let fromFile: Record<string, string | undefined> = {};
  if (file) {
    try {
      fromFile = parseEnv(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UsageError(`--secrets-file ${file}: ${(e as Error).message}`);
    }
  }
  return (name) => fromFile[name] ?? process.env[name] ?? undefined;
}
