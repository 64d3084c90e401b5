import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { layerOf, pushLayout, writeImageLayout } from '../test/helpers/agent-images.js';

export interface PushedImage {
  reference: string;
  layerDigests: string[];
  /** Sum of the (compressed) layer sizes: what a pull downloads. */
  bytes: number;
}

/**
 * An image of `layers` gzip layers, each one file of `layerBytes` random bytes (incompressible, so the
 * download is as large as the data), written as an OCI layout in `workDir` and pushed to `reference`.
 */
export async function pushRandomLayerImage(workDir: string, reference: string, layers: number, layerBytes: number): Promise<PushedImage> {
  const built = [];
  for (let index = 0; index < layers; index += 1) {
    built.push(
      await layerOf(
        [
          { name: 'data', type: 'directory' },
          { name: `data/layer-${index}.bin`, content: randomBytes(layerBytes) },
        ],
        'gzip',
      ),
    );
  }
  const layout = path.join(workDir, 'pull-image-layout');
  await writeImageLayout(layout, 'bench', { layers: built });
  await pushLayout(layout, 'bench', reference);
  return { reference, layerDigests: built.map((layer) => layer.digest), bytes: built.reduce((sum, layer) => sum + layer.blob.length, 0) };
}
