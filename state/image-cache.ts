import type { StatePaths } from './paths.js';
import { readJson, writeJsonAtomic } from './fsutil.js';

/** What bottled learned about an image ID (immutable, so never stale): user, stop signal, ids. */
export interface ImageRecord {
  user?: string;
  stopSignal?: string;
  uid?: number;
  gid?: number;
}

/** `<state>/cache/images.json`: one inspect per image ID ever, so a no-op pass makes none. */
export class ImageCache {
  private dirty = false;
  private constructor(
    private readonly file: string,
    readonly records: Map<string, ImageRecord>,
  ) {}

  static async open(paths: StatePaths): Promise<ImageCache> {
    const raw = await readJson<{ version: number; images: Record<string, ImageRecord> }>(paths.imageCache);
    const records = new Map(raw?.version === 1 ? Object.entries(raw.images) : []);
    return new ImageCache(paths.imageCache, records);
  }

  get(id: string): ImageRecord | undefined {
    return this.records.get(id);
  }

  set(id: string, rec: ImageRecord): void {
    this.records.set(id, rec);
    this.dirty = true;
  }

  /** Keep only images that still exist; write when something changed. */
  async save(existing: Set<string>): Promise<void> {
    for (const id of [...this.records.keys()]) {
      if (!existing.has(id)) {
        this.records.delete(id);
        this.dirty = true;
      }
    }
    if (!this.dirty) return;
    this.dirty = false;
    await writeJsonAtomic(this.file, { version: 1, images: Object.fromEntries(this.records) });
  }
}
