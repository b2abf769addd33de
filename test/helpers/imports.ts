// The project's own import graph, read from the source text: which module loads which at run
// time (type-only imports are erased by the compiler and do not count).
import fs from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const SOURCE_DIRS = ['controller', 'specs', 'resources', 'state', 'bench'];

export function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) out.push(p);
    }
  };
  for (const d of SOURCE_DIRS) if (fs.existsSync(path.join(ROOT, d))) walk(path.join(ROOT, d));
  return out;
}

export interface Import {
  /** A project file (absolute), or a package name. */
  target: string;
  runtime: boolean;
}

const STATEMENT = /^(?:import|export)\b[^;]*?from\s*['"]([^'"]+)['"]/gms;

export function importsOf(file: string): Import[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: Import[] = [];
  for (const m of text.matchAll(STATEMENT)) {
    const stmt = m[0];
    const spec = m[1]!;
    const names = /^(?:import|export)\s*\{([^}]*)\}/s.exec(stmt)?.[1];
    const typeOnly = /^(?:import|export)\s+type\b/.test(stmt) || (names !== undefined && names.split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type ')));
    if (spec.startsWith('node:')) continue;
    const target = spec.startsWith('.') ? path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')) : spec;
    out.push({ target, runtime: !typeOnly });
  }
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1]!;
    if (!spec.startsWith('node:')) out.push({ target: spec.startsWith('.') ? path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')) : spec, runtime: false });
  }
  return out;
}

/** Every project file and package `file` loads at run time, itself included. */
export function runtimeClosure(file: string): Set<string> {
  const seen = new Set<string>();
  const visit = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    if (!f.startsWith('/')) return;
    for (const i of importsOf(f)) if (i.runtime) visit(i.target);
  };
  visit(path.resolve(ROOT, file));
  return seen;
}

/** Groups of files that import each other in a circle (type-only imports included). */
export function importCycles(files: string[]): string[][] {
  const known = new Set(files);
  const graph = new Map(files.map((f) => [f, importsOf(f).map((i) => i.target).filter((t) => known.has(t))]));
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const connect = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)!) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(path.relative(ROOT, w));
      } while (w !== v);
      if (group.length > 1) cycles.push(group.sort());
    }
  };
  for (const f of files) if (!index.has(f)) connect(f);
  return cycles;
}
