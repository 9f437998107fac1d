/**
 * User data as an image folder: one subfolder per class, named after it; classes are the subfolder names
 * sorted (JavaScript default order), so label k is the k-th name. Files ending .png, .jpg or .jpeg (any
 * case) are read, sorted by name within each class; other files and hidden entries are skipped. Every
 * image is converted to `channels` ('rgb' by default, or 'gray') and resized with bilinear interpolation
 * to `size` (default: the first image's size). Samples are [C, H, W] floats in 0..1, classes in order.
 */
import { promises as fs } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { UserError } from '../errors.js';
import { printable } from '../printable.js';
import { readWhole } from './files.js';
import { decodeImage, resizeBilinear, toPlanar, type Channels } from './images.js';
import { DataBudget, formatBytes } from './limits.js';
import type { Dataset } from './types.js';

export interface ImageFolderOptions {
  /** [height, width], or one number for a square */
  size?: number | [number, number];
  channels?: Channels;
  /** what the decoded set may take; every image's decode is charged to it first */
  budget?: DataBudget;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

function isImageFile(name: string): boolean {
  return IMAGE_EXT.has(extname(name).toLowerCase());
}

export async function loadImageFolder(dir: string, opts: ImageFolderOptions = {}): Promise<Dataset> {
  const channels = opts.channels ?? 'rgb';
  if (channels !== 'gray' && channels !== 'rgb') throw new UserError(`channels ${JSON.stringify(channels)}`, "expected 'gray' or 'rgb'");
  let size: [number, number] | undefined = typeof opts.size === 'number' ? [opts.size, opts.size] : opts.size;
  if (size && !size.every((d) => Number.isInteger(d) && d > 0)) throw new UserError(`image size ${size.join('x')}`, 'expected positive integers');

  const entries = await fs.readdir(dir, { withFileTypes: true });
  const classes = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (classes.length === 0) {
    throw new UserError(
      dir,
      'has no class subfolders; expected an image folder (one subfolder of PNG/JPEG files per class), a test_data_set folder, or x.npy and y.npy',
    );
  }
  const files: { path: string; label: number }[] = [];
  for (const [label, cls] of classes.entries()) {
    const names = (await fs.readdir(join(dir, cls))).filter((n) => !n.startsWith('.') && isImageFile(n)).sort();
    for (const n of names) files.push({ path: join(dir, cls, n), label });
  }
  if (files.length === 0)
    throw new UserError(dir, `has zero images; expected .png, .jpg or .jpeg files in its class subfolders (${classes.map(printable).join(', ')})`);

  const budget = opts.budget ?? new DataBudget();
  const c = channels === 'gray' ? 1 : 3;
  let x: Float32Array | undefined;
  const y = new Int32Array(files.length);
  for (const [i, f] of files.entries()) {
    const bytes = await readWhole(f.path, budget);
    const img = decodeImage(bytes, f.path, budget);
    // The first image sets the size; the whole set is charged before its buffer exists.
    size ??= [img.height, img.width];
    const [h, w] = size;
    if (!x) {
      const setBytes = files.length * c * h * w * 4;
      budget.take(dir, setBytes, `holds ${files.length} image${files.length === 1 ? '' : 's'} of ${c}x${h}x${w} floats, ${formatBytes(setBytes)} in all`);
      x = new Float32Array(files.length * c * h * w);
    }
    // The decoded pixels, their planar copy and the resized one, for as long as they live.
    const working = img.data.byteLength + c * 4 * (img.width * img.height + h * w);
    budget.take(f.path, working, `declares ${img.width}x${img.height} pixels, which take ${formatBytes(working)} as ${c}-channel floats`);
    x.set(resizeBilinear(toPlanar(img, channels), c, img.height, img.width, h, w), i * c * h * w);
    budget.release(working);
    budget.release(bytes.length);
    y[i] = f.label;
  }
  return {
    name: basename(dir),
    sampleShape: [c, size![0], size![1]],
    x: x!,
    y,
    task: 'classification',
    classes,
    count: files.length,
    split: 'all',
    source: dir,
    targetSize: 1,
    resizedTo: [size![0], size![1]],
  };
}
