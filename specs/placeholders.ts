// Placeholders in env values: `${sidecar.<name>.ip}`, `${sidecar.<name>.host}` and
// `${sidecar.<name>.port.<containerPort>}`. The schema checks them; the controller resolves
// them at apply time with `substitutePlaceholders`, so both share this one parser.

export type PlaceholderRef =
  | { sidecar: string; field: 'ip' }
  | { sidecar: string; field: 'host' }
  | { sidecar: string; field: 'port'; port: number };

export interface ScannedPlaceholder {
  text: string; // e.g. "${sidecar.bundle.ip}"
  start: number; // index of "$" in the value
  ref?: PlaceholderRef; // undefined when the placeholder is not one of the supported forms
}

export interface PlaceholderScan {
  placeholders: ScannedPlaceholder[];
  /** Set when a "${" has no closing "}". */
  unterminatedAt?: number;
}

const PLACEHOLDER_BODY = /^sidecar\.([a-z][a-z0-9-]{0,19})\.(ip|host|port\.([0-9]{1,5}))$/;

export const SUPPORTED_PLACEHOLDERS =
  '${sidecar.<name>.ip}, ${sidecar.<name>.host} and ${sidecar.<name>.port.<containerPort>}';

export function scanPlaceholders(value: string): PlaceholderScan {
  const placeholders: ScannedPlaceholder[] = [];
  let from = 0;
  for (;;) {
    const start = value.indexOf('${', from);
    if (start < 0) return { placeholders };
    const end = value.indexOf('}', start + 2);
    if (end < 0) return { placeholders, unterminatedAt: start };
    const text = value.slice(start, end + 1);
    placeholders.push({ text, start, ref: parseBody(value.slice(start + 2, end)) });
    from = end + 1;
  }
}

function parseBody(body: string): PlaceholderRef | undefined {
  const match = PLACEHOLDER_BODY.exec(body);
  if (!match) return undefined;
  const sidecar = match[1] as string;
  if (match[2] === 'ip') return { sidecar, field: 'ip' };
  if (match[2] === 'host') return { sidecar, field: 'host' };
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  return { sidecar, field: 'port', port };
}

/** The placeholders of a value that the schema accepted (all of them well-formed). */
export function placeholderRefs(value: string): PlaceholderRef[] {
  return scanPlaceholders(value).placeholders.flatMap((p) => (p.ref ? [p.ref] : []));
}

/**
 * Replaces every placeholder with `lookup(ref)`. When some cannot be resolved yet the
 * value is not built at all (a resource must wait rather than start with a wrong value):
 * the result lists what is missing instead.
 */
export function substitutePlaceholders(
  value: string,
  lookup: (ref: PlaceholderRef) => string | undefined,
): { value: string } | { unresolved: PlaceholderRef[] } {
  const unresolved: PlaceholderRef[] = [];
  let result = '';
  let copiedUpTo = 0;
  for (const placeholder of scanPlaceholders(value).placeholders) {
    if (!placeholder.ref) continue; // rejected by the schema; kept literally if it ever gets here
    const replacement = lookup(placeholder.ref);
    if (replacement === undefined) unresolved.push(placeholder.ref);
    result += value.slice(copiedUpTo, placeholder.start) + (replacement ?? '');
    copiedUpTo = placeholder.start + placeholder.text.length;
  }
  if (unresolved.length > 0) return { unresolved };
  return { value: result + value.slice(copiedUpTo) };
}
