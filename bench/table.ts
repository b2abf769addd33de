/** A plain markdown table: left-aligned first column, right-aligned figures. */
export function table(title: string, headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!));
  const line = (r: string[]) => `| ${r.map((c, i) => cell(c ?? '', i)).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i === 0 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`;
  return [`${title}`, '', line(headers), sep, ...rows.map(line), ''].join('\n');
}

export const ms = (x: number): string => (Number.isFinite(x) ? Math.round(x).toString() : '-');
export const mb = (kb: number): string => (Number.isFinite(kb) ? (kb / 1024).toFixed(1) : '-');
export const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '-');
