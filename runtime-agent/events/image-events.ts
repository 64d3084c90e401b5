import type { RemoveResult } from '../api.js';
import type { ImageRecord } from '../image/image-store.js';
import type { EventBus } from './event-bus.js';

/** Image events as docker's: `pull` of a reference, `untag` and `delete` of an image id. */
export class ImageEvents {
  constructor(private readonly bus: EventBus) {}

  pulled(reference: string): void {
    this.publish('pull', reference, reference);
  }

  /** `rmi`: an `untag` per reference removed, a `delete` per image whose config went with them (docker names both by image id). */
  removed(records: readonly ImageRecord[], result: RemoveResult): void {
    for (const record of records)
      if (result.untagged.includes(record.reference)) this.publish('untag', record.configDigest, record.configDigest);
    const deleted = new Set(records.map((record) => record.configDigest).filter((id) => result.deleted.includes(id)));
    for (const imageId of deleted) this.publish('delete', imageId, imageId);
  }

  private publish(Action: string, ID: string, name: string): void {
    this.bus.publish({ Type: 'image', Action, Actor: { ID, Attributes: { name } } });
  }
}
