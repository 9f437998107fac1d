/**
 * Data files built byte by byte from their format specs, not with the code under test: .npy, zip
 * (.npz) and PNG, with every size field open to being set to a lie.
 */
import { crc32, deflateRawSync, deflateSync } from 'node:zlib';

/** A .npy v1.0 file; `shapeText` overrides the shape as written in the header. */
export function npy(descr: string, shape: number[], data: ArrayBufferView, fortran = false, shapeText?: string): Buffer {
  const text = shapeText ?? (shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`);
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${text}, }`;
  const pad = 16 - ((10 + header.length + 1) % 16);
  header += ' '.repeat(pad % 16) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

export interface ZipMember {
  name: string;
  content: Buffer;
  deflate?: boolean;
  /** the compressed bytes to store instead of compressing `content` (a bomb, a wrong stream) */
  raw?: Buffer;
  /** uncompressed size as the central directory declares it (default: the content's length) */
  size?: number;
  /** uncompressed size as the local header declares it (default: as the directory) */
  localSize?: number;
  /** the CRC-32 to declare (default: the content's) */
  crc?: number;
}

/** A zip: local headers, central directory and end record, each field as given. */
export function zipOf(members: ZipMember[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const method = m.deflate ? 8 : 0;
    const data = m.raw ?? (m.deflate ? deflateRawSync(m.content) : m.content);
    const crc = m.crc ?? crc32(m.content);
    const size = m.size ?? m.content.length;
    const nameBuf = Buffer.from(m.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(m.localSize ?? size, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(nameBuf.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBuf, data);
    centrals.push(central, nameBuf);
    offset += 30 + nameBuf.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** The common case: named contents, all stored or all deflated. */
export function zip(members: Record<string, Buffer>, deflate: boolean): Buffer {
  return zipOf(Object.entries(members).map(([name, content]) => ({ name, content, deflate })));
}

/**
 * A raw deflate stream of `n` zero bytes, written bit by bit (RFC 1951, one fixed-Huffman block: a
 * literal 0, then matches of length 258 at distance 1), so the zeros never exist in memory: a bomb's
 * payload, about 13 bits per 258 bytes.
 */
export function deflatedZeros(n: number): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  const put = (v: number, len: number, msbFirst: boolean) => {
    for (let i = 0; i < len; i++) {
      const bit = msbFirst ? (v >> (len - 1 - i)) & 1 : (v >> i) & 1;
      acc |= bit << bits;
      if (++bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  };
  put(1, 1, false); // BFINAL
  put(1, 2, false); // BTYPE 01: fixed Huffman codes
  let left = n;
  if (left > 0) {
    put(0x30, 8, true); // literal 0
    left--;
  }
  for (; left >= 258; left -= 258) {
    put(0xc5, 8, true); // length code 285: 258 bytes
    put(0, 5, true); // distance code 0: 1 byte back
  }
  for (; left > 0; left--) put(0x30, 8, true);
  put(0, 7, true); // end of block (256)
  if (bits > 0) out.push(acc);
  return Buffer.from(out);
}

/** The zlib stream (RFC 1950: header, deflate, Adler-32) of `n` zero bytes, as PNG image data holds it. */
export function zlibZeros(n: number): Buffer {
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((n % 65521) << 16) | 1) >>> 0, 0); // a = 1 + 0s, b = n·a
  return Buffer.concat([Buffer.from([0x78, 0x01]), deflatedZeros(n), adler]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

export interface PngSpec {
  width: number;
  height: number;
  /** 8-bit gray pixels, width × height of them (default: a gradient) */
  pixels?: Uint8Array;
  interlaced?: boolean;
  /** the zlib stream to store as IDAT instead of the image's own */
  idat?: Buffer;
}

/** An 8-bit grayscale PNG, Adam7-interlaced if asked, written from the PNG specification. */
export function pngOf(spec: PngSpec): Buffer {
  const { width: w, height: h } = spec;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  ihdr[12] = spec.interlaced ? 1 : 0;
  let idat = spec.idat;
  if (!idat) {
    const px = spec.pixels ?? Uint8Array.from({ length: w * h }, (_, i) => (i * 7) & 0xff);
    const rows: number[] = [];
    const passes = spec.interlaced
      ? [
          [0, 0, 8, 8],
          [4, 0, 8, 8],
          [0, 4, 4, 8],
          [2, 0, 4, 4],
          [0, 2, 2, 4],
          [1, 0, 2, 2],
          [0, 1, 1, 2],
        ]
      : [[0, 0, 1, 1]];
    for (const [x0, y0, dx, dy] of passes) {
      if (x0! >= w || y0! >= h) continue;
      for (let y = y0!; y < h; y += dy!) {
        rows.push(0); // filter type None
        for (let x = x0!; x < w; x += dx!) rows.push(px[y * w + x]!);
      }
    }
    idat = deflateSync(Buffer.from(rows));
  }
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

/** A JPEG whose first frame header (SOF) is made to declare `width` × `height`. */
export function withJpegSize(jpeg: Uint8Array, width: number, height: number): Buffer {
  const b = Buffer.from(jpeg);
  for (let p = 2; p + 9 < b.length; ) {
    const marker = b[p + 1]!;
    const len = b.readUInt16BE(p + 2);
    if (marker >= 0xc0 && marker <= 0xc3) {
      b.writeUInt16BE(height, p + 5);
      b.writeUInt16BE(width, p + 7);
      return b;
    }
    p += 2 + len;
  }
  throw new Error('no SOF in the JPEG');
}
