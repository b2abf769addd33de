// From a field path (as zod reports it) to a 1-based line/column in the YAML text.
import { isAlias, isCollection, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type FieldPath = readonly PropertyKey[];
export interface Position {
  line: number;
  col: number;
}

interface Found {
  node: Node | null; // the node at the end of the path, or the deepest one that exists
  key: Node | null; // the key of the pair that holds `node`, when it is a map value
  exact: boolean; // false when the path goes further than the document does
}

function keyText(key: unknown): string | undefined {
  return isScalar(key) ? String(key.value) : undefined;
}

function isEmptyScalar(node: Node): boolean {
  return isScalar(node) && node.value === null && !!node.range && node.range[0] === node.range[1];
}

function find(doc: Document, path: FieldPath): Found {
  let node = doc.contents as Node | null;
  let key: Node | null = null;
  for (const segment of path) {
    if (isAlias(node)) node = (node.resolve(doc) as Node | undefined) ?? null;
    let next: Node | null | undefined;
    let nextKey: Node | null = null;
    if (isMap(node)) {
      const pair = node.items.find((item) => keyText(item.key) === String(segment));
      next = pair ? ((pair.value as Node | null) ?? null) : undefined;
      nextKey = pair ? (pair.key as Node) : null;
    } else if (isSeq(node) && /^[0-9]+$/.test(String(segment))) {
      next = (node.items[Number(segment)] as Node | undefined) ?? undefined;
    }
    if (next === undefined) return { node, key, exact: false };
    if (next === null || isEmptyScalar(next)) return { node: null, key: nextKey, exact: true }; // `key:` with no value
    node = next;
    key = nextKey;
  }
  return { node, key, exact: true };
}

export class YamlLocator {
  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    private readonly text: string,
  ) {}

  private at(offset: number): Position {
    return this.lineCounter.linePos(offset);
  }

  private startOf(node: Node | null): Position | undefined {
    return node?.range ? this.at(node.range[0]) : undefined;
  }

  /** Where the document's content starts (its first key, for a block mapping). */
  documentStart(): Position {
    return this.startOf(this.doc.contents as Node | null) ?? this.at(this.doc.range?.[0] ?? 0);
  }

  /**
   * Position for a problem with the field at `path`. Values point at the value itself; a
   * mapping or list points at the key that holds it (its first line is often blank or
   * another field). `at: 'key'` asks for the key even for scalars (unknown or duplicate
   * keys). A field that is missing points at the key of its nearest parent that exists.
   */
  locate(path: FieldPath, at: 'value' | 'key' = 'value'): Position {
    const { node, key, exact } = find(this.doc, path);
    const preferKey = !exact || at === 'key' || node === null || isCollection(node);
    return (preferKey ? this.startOf(key) : undefined) ?? this.startOf(node) ?? this.documentStart();
  }

  /** The text of an unquoted scalar as written (`1.10`, not the number 1.1), if it is one. */
  plainScalarSource(path: FieldPath): string | undefined {
    const { node, exact } = find(this.doc, path);
    if (!exact || !isScalar(node) || node.type !== 'PLAIN' || !node.range) return undefined;
    return this.text.slice(node.range[0], node.range[1]);
  }

  /** The string value at `path`, if it is a scalar (to read kind and metadata.name of any document). */
  scalarAt(path: FieldPath): { value: unknown; position: Position } | undefined {
    const { node, exact } = find(this.doc, path);
    if (!exact || !isScalar(node)) return undefined;
    return { value: node.value, position: this.startOf(node) ?? this.documentStart() };
  }
}
