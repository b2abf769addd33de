import path from 'node:path';
import { execa } from 'execa';
import { GitMirror, isRemoteUrl, type RemoteAuth } from '../specs/git-remote.js';
import { GitSource, gitEnv, resolveRef } from '../specs/git-source.js';
import { verifyCommit } from '../specs/git-verify.js';
import type { EventLog } from '../state/events.js';
import type { StatePaths } from '../state/paths.js';
import { readSourceStatus, writeSourceStatus, type SourceStatus } from '../state/source-status.js';

export interface TrackerOptions {
  /** `--git`: a local repository path or a remote URL. */
  spec: string;
  ref: string;
  subdir: string;
  paths: StatePaths;
  /** `--verify-commits FILE`: ssh allowed signers. */
  verify?: string;
  auth?: RemoteAuth;
  events?: EventLog;
  /** Record what is fetched and applied in `<state>/source.json` (validate does not). */
  persist?: boolean;
}

export interface Refresh {
  /** The applied revision changed (a pass should follow). */
  changed: boolean;
  applied?: string;
  /** The newest revision was refused: why. */
  refused?: { revision: string; problem: string };
  /** The fetch failed this time (everything keeps running as applied). */
  error?: string;
  forced?: { from: string; to: string };
  /** The fetch works again after failing this many times. */
  recovered?: { after: number; since: string };
}

/**
 * Which revision of a git source the bottles are applied from. A remote is fetched into a mirror
 * (only the ref, forced: a rewritten history is applied like any new revision); a local
 * repository's ref is resolved. With --verify-commits only a revision signed by an allowed key is
 * applied; otherwise the last one that was stays applied. One refresh is one consistent answer,
 * recorded in `<state>/source.json`.
 */
export class GitTracker {
  readonly remote: boolean;
  private readonly mirror?: GitMirror;
  readonly repo: string;
  readonly describe: string;
  private state?: SourceStatus;

  constructor(private readonly o: TrackerOptions) {
    this.remote = isRemoteUrl(o.spec);
    if (this.remote) {
      this.mirror = new GitMirror(o.spec, o.paths.root, o.auth ?? {});
      this.repo = this.mirror.dir;
    } else {
      this.repo = path.resolve(o.spec);
    }
    this.describe = `git:${this.remote ? o.spec : this.repo}@${o.ref}:${o.subdir}`;
  }

  get applied(): string | undefined {
    return this.state?.applied;
  }

  get status(): SourceStatus | undefined {
    return this.state;
  }

  private async load(): Promise<SourceStatus> {
    if (!this.state) {
      const saved = this.o.persist === false ? undefined : await readSourceStatus(this.o.paths, this.describe);
      this.state = saved ?? { describe: this.describe };
    }
    return this.state;
  }

  async refresh(): Promise<Refresh> {
    const st = await this.load();
    const before = st.applied;
    const now = new Date().toISOString();
    let latest: string;
    let forced: Refresh['forced'];
    try {
      if (this.mirror) {
        const f = await this.mirror.fetch(this.o.ref);
        latest = f.revision;
        if (f.forced && f.previous) forced = { from: f.previous, to: f.revision };
      } else {
        latest = await resolveRef(this.repo, this.o.ref);
      }
    } catch (e) {
      const error = (e as Error).message;
      st.failing = { since: st.failing?.since ?? now, lastAttempt: now, attempts: (st.failing?.attempts ?? 0) + 1, error };
      await this.save();
      if (st.failing.attempts === 1) await this.event('fetch', 'failed', undefined, error);
      return { changed: false, applied: st.applied, error };
    }
    const recovered = st.failing ? { after: st.failing.attempts, since: st.failing.since } : undefined;
    delete st.failing;
    if (st.fetched?.revision !== latest) st.fetched = { revision: latest, at: now };
    if (forced) {
      st.forced = { ...forced, at: now };
      await this.event('fetch', 'info', latest, `history rewritten at ${this.o.ref}: ${forced.from.slice(0, 12)} -> ${forced.to.slice(0, 12)} (forced push)`);
    }
    let refused: Refresh['refused'];
    if (this.o.verify) {
      const v = await verifyCommit(this.repo, latest, this.o.verify);
      if (v.ok) {
        st.verified = { revision: latest, signer: v.signer };
        st.applied = latest;
        delete st.refused;
        await this.keep(latest);
      } else {
        refused = { revision: latest, problem: v.problem };
        if (st.refused?.revision !== latest) {
          st.refused = { ...refused, since: now };
          await this.event('hold', 'failed', latest, `revision ${latest.slice(0, 12)} of ${this.o.ref} is not applied: ${v.problem}${st.applied ? `; ${st.applied.slice(0, 12)} stays applied` : ''}`);
        }
      }
    } else {
      st.applied = latest;
    }
    await this.save();
    if (st.applied !== before && st.applied) await this.event('revision', 'info', st.applied, `${before ? `${before.slice(0, 12)} -> ` : ''}${st.applied.slice(0, 12)}`);
    return { changed: st.applied !== before, applied: st.applied, refused, forced, recovered };
  }

  /** The source of the applied revision (the newest, or the last verified). */
  async openSource(): Promise<GitSource> {
    const st = await this.load();
    if (!st.applied) {
      const why = st.refused ? `${st.refused.revision.slice(0, 12)} of ${this.o.ref} is refused: ${st.refused.problem}` : st.failing ? `fetching failed: ${st.failing.error}` : 'nothing fetched yet';
      throw new Error(`${this.describe}: no revision to apply (${why})`);
    }
    return GitSource.open({ repo: this.repo, ref: st.applied, subdir: this.o.subdir });
  }

  /** A verified revision keeps a ref, so a forced push away from it cannot let git collect it. */
  private async keep(revision: string): Promise<void> {
    if (!this.mirror) return;
    await execa('git', ['-C', this.repo, 'update-ref', `${this.mirror.localRef(this.o.ref)}-verified`, revision], { env: gitEnv(this.repo), reject: false });
  }

  private async save(): Promise<void> {
    if (this.o.persist !== false) await writeSourceStatus(this.o.paths, this.state!);
  }

  private async event(action: string, result: 'ok' | 'failed' | 'info', revision: string | undefined, text: string): Promise<void> {
    if (this.o.persist === false) return;
    await this.o.events?.append({ unit: 'source', reconcileId: '-', action, result, ...(result === 'failed' ? { error: text } : { cause: text }), ...(revision && { revision }) });
  }
}
