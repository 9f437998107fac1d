/**
 * Decoding PNG and JPEG in pure JavaScript (pngjs, jpeg-js) and resizing, for image-folder data sets.
 * Pixels become floats in 0..1 (value / 255), planar channel-first [C, H, W]. Alpha is dropped (not
 * composited). Grayscale from colour uses the ITU-R BT.601 luma weights 0.299 R + 0.587 G + 0.114 B, as
 * PIL's convert('L') does.
 */
import { inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { UserError } from '../errors.js';
import { DataBudget, formatBytes } from './limits.js';

export type Channels = 'gray' | 'rgb';

export interface RgbaImage {
  width: number;
  height: number;
  /** width * height * 4 bytes */
  data: Uint8Array;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

type Format = 'png' | 'jpeg';

function imageFormat(bytes: Uint8Array): Format | undefined {
  if (PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (JPEG_MAGIC.every((b, i) => bytes[i] === b)) return 'jpeg';
  return undefined;
}

/** What an image's header declares, read without decoding anything. */
export interface ImageHeader {
  format: Format;
  width: number;
  height: number;
  /** the most memory decoding an image of this header holds at once, by the decoder's own allocations */
  decodeBytes: number;
  /** PNG: Adam7-interlaced, and the exact size its image data must inflate to */
  interlaced?: boolean;
  inflatedBytes?: number;
}

/** PNG channels per colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Bytes of filtered scanlines a PNG's image data inflates to: one filter byte per row, per Adam7 pass if interlaced. */
function pngInflatedBytes(w: number, h: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (pw: number, ph: number) => (pw > 0 && ph > 0 ? ph * (1 + Math.ceil((pw * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(w, h);
  const passes = [
    [0, 0, 8, 8],
    [4, 0, 8, 8],
    [0, 4, 4, 8],
    [2, 0, 4, 4],
    [0, 2, 2, 4],
    [1, 0, 2, 2],
    [0, 1, 1, 2],
  ];
  return passes.reduce((sum, [x0, y0, dx, dy]) => sum + rows(Math.ceil((w - x0!) / dx!), Math.ceil((h - y0!) / dy!)), 0);
}

function pngHeader(bytes: Uint8Array, fail: (cause: string) => never): ImageHeader {
  // IHDR must be the first chunk: length 13, type, width, height, depth, colour type, ..., interlace.
  if (bytes.length < 33) fail('truncated before the end of its IHDR header');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(8) !== 13 || Buffer.from(bytes.subarray(12, 16)).toString('latin1') !== 'IHDR') fail('does not start with an IHDR chunk');
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  const depth = bytes[24]!;
  const channels = PNG_CHANNELS[bytes[25]!];
  if (channels === undefined || ![1, 2, 4, 8, 16].includes(depth)) fail(`has an invalid IHDR (colour type ${bytes[25]}, bit depth ${depth})`);
  const interlaced = bytes[28] === 1;
  const inflatedBytes = pngInflatedBytes(width, height, channels * depth, interlaced);
  // The data is inflated once to check it; then pngjs holds the inflated and the unfiltered
  // scanlines, then RGBA pixels (16-bit: 8 bytes each, then 4).
  const decodeBytes = 3 * inflatedBytes + width * height * (depth === 16 ? 12 : 4);
  return { format: 'png', width, height, decodeBytes, interlaced, inflatedBytes };
}

/** The first frame header (SOF0..SOF15 but DHT, JPG, DAC) before the first scan. */
function jpegHeader(bytes: Uint8Array, fail: (cause: string) => never): ImageHeader {
  let p = 2;
  while (p < bytes.length) {
    if (bytes[p] !== 0xff) {
      p++; // stray bytes between segments: decoders skip them, and so do we
      continue;
    }
    while (bytes[p] === 0xff) p++;
    const marker = bytes[p++];
    if (marker === undefined || marker === 0xd9) break;
    if (marker === 0x01 || marker === 0x00 || (marker >= 0xd0 && marker <= 0xd8)) continue; // no length field
    if (p + 2 > bytes.length) break;
    const len = (bytes[p]! << 8) | bytes[p + 1]!;
    if (marker === 0xda) break;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (p + 8 > bytes.length) break;
      const height = (bytes[p + 3]! << 8) | bytes[p + 4]!;
      const width = (bytes[p + 5]! << 8) | bytes[p + 6]!;
      const components = bytes[p + 7]!;
      if (components < 1 || components > 4) fail(`declares ${components} colour components (expected 1 to 4)`);
      if (height === 0) fail('declares height 0 (to be set later by a DNL marker), which is not supported');
      // jpeg-js holds per component a 4-byte coefficient and a 1-byte sample per pixel (plus each 8x8
      // block's object) over MCU-padded dimensions, then the interleaved samples, then RGBA.
      const decodeBytes = (width + 32) * (height + 32) * (8 * components + 4);
      return { format: 'jpeg', width, height, decodeBytes };
    }
    p += len;
  }
  return fail('has no frame header (SOF) before its image data');
}

/** Dimensions and decode cost from the header alone; zero-sized images are refused. */
export function readImageHeader(bytes: Uint8Array, subject: string): ImageHeader {
  const format = imageFormat(bytes);
  if (!format) throw new UserError(subject, 'is not a PNG or JPEG image (unrecognised signature bytes)');
  const fail = (cause: string): never => {
    throw new UserError(subject, `corrupt ${format.toUpperCase()} image: ${cause}`);
  };
  const h = format === 'png' ? pngHeader(bytes, fail) : jpegHeader(bytes, fail);
  if (h.width === 0 || h.height === 0) fail(`declares ${h.width}x${h.height} pixels; expected a non-empty image`);
  if (h.width > 0x7fffffff || h.height > 0x7fffffff) fail(`declares ${h.width}x${h.height} pixels, beyond what the PNG format allows`);
  return h;
}

/**
 * The image data (all IDAT chunks) must inflate to exactly the size the header implies, checked here
 * before pngjs sees it: pngjs inflates interlaced data without a cap, and given too little data it
 * unfilters whatever its unfilled buffer held (so pixels, and whether the file loads at all, would
 * depend on stale memory).
 */
function checkImageData(bytes: Uint8Array, h: ImageHeader, subject: string): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: Uint8Array[] = [];
  for (let p = 8; p + 12 <= bytes.length; ) {
    const len = dv.getUint32(p);
    const type = Buffer.from(bytes.subarray(p + 4, p + 8)).toString('latin1');
    if (p + 12 + len > bytes.length) break;
    if (type === 'IDAT') parts.push(bytes.subarray(p + 8, p + 8 + len));
    if (type === 'IEND') break;
    p += 12 + len;
  }
  const want = h.inflatedBytes!;
  // typed on the name, so tsc knows control ends at each call
  const fail: (cause: string) => never = (cause) => {
    throw new UserError(subject, `corrupt PNG image: ${cause}`);
  };
  let got: number;
  try {
    got = inflateSync(Buffer.concat(parts), { maxOutputLength: Math.max(1, want) }).length;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      fail(`its image data inflates to more than the ${want} bytes its ${h.width}x${h.height} header implies`);
    fail(`its image data does not inflate (${(e as Error).message})`);
  }
  if (got !== want) fail(`its image data inflates to ${got} bytes, its ${h.width}x${h.height} header implies ${want} (truncated?)`);
}

/**
 * Decodes by content, not by file name. `subject` names the file in errors. The header is read
 * first and its decode cost charged to `budget` (and given back after), so an image that declares
 * more pixels than the data size limit allows is refused before any pixel buffer is allocated.
 */
export function decodeImage(bytes: Uint8Array, subject: string, budget: DataBudget = new DataBudget()): RgbaImage {
  const h = readImageHeader(bytes, subject);
  budget.take(subject, h.decodeBytes, `declares ${h.width}x${h.height} pixels, which take about ${formatBytes(h.decodeBytes)} to decode`);
  try {
    if (h.format === 'png') {
      checkImageData(bytes, h, subject);
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      if (png.width !== h.width || png.height !== h.height)
        throw new Error(`decoded ${png.width}x${png.height} pixels, the header says ${h.width}x${h.height}`);
      return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    }
    // jpeg-js's own limits are a second fence, in case it finds a frame the header scan did not.
    const img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: Math.ceil((h.width * h.height) / 1e6) + 1,
      maxMemoryUsageInMB: Math.ceil(h.decodeBytes / 2 ** 20) + 1,
    });
    if (img.width !== h.width || img.height !== h.height) throw new Error(`decoded ${img.width}x${img.height} pixels, the header says ${h.width}x${h.height}`);
    return { width: img.width, height: img.height, data: img.data };
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(subject, `corrupt ${h.format.toUpperCase()} image: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    budget.release(h.decodeBytes);
  }
}

/** Planar [C, H, W] floats in 0..1. */
export function toPlanar(img: RgbaImage, channels: Channels): Float32Array {
  const n = img.width * img.height;
  const c = channels === 'gray' ? 1 : 3;
  const out = new Float32Array(c * n);
  const d = img.data;
  for (let p = 0; p < n; p++) {
    const r = d[p * 4]!,
      g = d[p * 4 + 1]!,
      b = d[p * 4 + 2]!;
    if (c === 1) out[p] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    else {
      out[p] = r / 255;
      out[n + p] = g / 255;
      out[2 * n + p] = b / 255;
    }
  }
  return out;
}

/**
 * Bilinear resize of planar [C, H, W] to [C, outH, outW] with half-pixel centres (source coordinate
 * (dst + 0.5) · in/out − 0.5, clamped at the edges) — the convention of OpenCV's INTER_LINEAR and ONNX
 * Resize's half_pixel mode. No antialiasing, so strong downscaling aliases; same size is a copy.
 */
export function resizeBilinear(src: Float32Array, c: number, h: number, w: number, outH: number, outW: number): Float32Array {
  if (h === outH && w === outW) return src.slice();
  const out = new Float32Array(c * outH * outW);
  const sy = h / outH;
  const sx = w / outW;
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const wx = fx - x0;
      for (let k = 0; k < c; k++) {
        const base = k * h * w;
        const a = src[base + y0 * w + x0]!,
          b = src[base + y0 * w + x1]!;
        const cc = src[base + y1 * w + x0]!,
          d = src[base + y1 * w + x1]!;
        out[k * outH * outW + y * outW + x] = (a * (1 - wx) + b * wx) * (1 - wy) + (cc * (1 - wx) + d * wx) * wy;
      }
    }
  }
  return out;
}
