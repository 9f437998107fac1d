/**
 * Decoding PNG and JPEG in pure JavaScript (pngjs, jpeg-js) and resizing, for image-folder data sets.
 * Pixels become floats in 0..1 (value / 255), planar channel-first [C, H, W]. Alpha is dropped (not
 * composited). Grayscale from colour uses the ITU-R BT.601 luma weights 0.299 R + 0.587 G + 0.114 B, as
 * PIL's convert('L') does.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { UserError } from '../errors.js';

export type Channels = 'gray' | 'rgb';

export interface RgbaImage {
  width: number;
  height: number;
  /** width * height * 4 bytes */
  data: Uint8Array;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

function imageFormat(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (JPEG_MAGIC.every((b, i) => bytes[i] === b)) return 'jpeg';
  return undefined;
}

/** Decodes by content, not by file name. `subject` names the file in errors. */
export function decodeImage(bytes: Uint8Array, subject: string): RgbaImage {
  const format = imageFormat(bytes);
  if (!format) throw new UserError(subject, 'is not a PNG or JPEG image (unrecognised signature bytes)');
  try {
    if (format === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    }
    // Limits guard against a corrupt header claiming a gigantic image.
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 200, maxMemoryUsageInMB: 1024 });
    return { width: img.width, height: img.height, data: img.data };
  } catch (e) {
    throw new UserError(subject, `corrupt ${format.toUpperCase()} image: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Planar [C, H, W] floats in 0..1. */
export function toPlanar(img: RgbaImage, channels: Channels): Float32Array {
  const n = img.width * img.height;
  const c = channels === 'gray' ? 1 : 3;
  const out = new Float32Array(c * n);
  const d = img.data;
  for (let p = 0; p < n; p++) {
    const r = d[p * 4]!, g = d[p * 4 + 1]!, b = d[p * 4 + 2]!;
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
        const a = src[base + y0 * w + x0]!, b = src[base + y0 * w + x1]!;
        const cc = src[base + y1 * w + x0]!, d = src[base + y1 * w + x1]!;
        out[k * outH * outW + y * outW + x] = (a * (1 - wx) + b * wx) * (1 - wy) + (cc * (1 - wx) + d * wx) * wy;
      }
    }
  }
  return out;
}
