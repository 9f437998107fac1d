/**
 * A minimal zip reader for .npz files (which numpy.savez writes as a plain zip, stored or deflated, with
 * zip64 extra fields). Reads the central directory, so data descriptors and zip64 sizes are handled, and
 * checks each member's CRC-32. No encryption, no multi-disk archives, no methods besides store/deflate.
 *
 * A member's declared uncompressed size is trusted only as an upper bound: it is charged to the data
 * budget before inflating, and inflating stops as soon as the output would pass it, so a zip bomb or a
 * directory that understates a member costs at most what it declared. The local header must agree
 * with the central directory on method, sizes and CRC.
 */
import { inflateRawSync } from 'node:zlib';
import { UserError } from '../errors.js';
import { printable } from '../printable.js';
import { quoted } from './text.js';
import { formatBytes, MAX_BUFFER, type DataBudget } from './limits.js';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  crc: number;
  /** offset of the member's local header */
  localOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

let crcTable: Uint32Array | undefined;
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A member's name is text from the file: its control characters are escaped (printable()), so that every
 * message naming it (and the array name it becomes) stays one visible line.
 */
function memberName(bytes: Uint8Array, flags: number): string {
  const raw = Buffer.from(bytes).toString(flags & 0x800 ? 'utf8' : 'latin1');
  return printable(raw);
}

export class ZipReader {
  readonly entries: ZipEntry[] = [];
  private readonly dv: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly subject: string,
    private readonly budget?: DataBudget,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.readDirectory();
  }

  private fail(cause: string): never {
    throw new UserError(this.subject, `not a valid .npz (zip) file: ${cause}`);
  }

  private u16(at: number): number {
    if (at + 2 > this.bytes.length) this.fail('truncated');
    return this.dv.getUint16(at, true);
  }

  private u32(at: number): number {
    if (at + 4 > this.bytes.length) this.fail('truncated');
    return this.dv.getUint32(at, true);
  }

  private u64(at: number): number {
    if (at + 8 > this.bytes.length) this.fail('truncated');
    return Number(this.dv.getBigUint64(at, true));
  }

  private readDirectory(): void {
    const b = this.bytes;
    let eocd = -1;
    for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 0xffff); i--) {
      if (this.dv.getUint32(i, true) === SIG_EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      const looksZip = b.length >= 4 && this.dv.getUint32(0, true) === SIG_LOCAL;
      this.fail(
        looksZip
          ? 'no end-of-central-directory record (truncated?)'
          : `expected a zip archive (starting with PK\\x03\\x04), found ${b.length} bytes of something else`,
      );
    }
    let count = this.u16(eocd + 10);
    let dirOffset = this.u32(eocd + 16);
    if (count === 0xffff || dirOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || this.u32(loc) !== SIG_ZIP64_LOCATOR) this.fail('zip64 sizes without a zip64 locator');
      const z = this.u64(loc + 8);
      if (this.u32(z) !== SIG_ZIP64_EOCD) this.fail('zip64 end record not where its locator points');
      count = this.u64(z + 32);
      dirOffset = this.u64(z + 48);
    }
    let p = dirOffset;
    const seen = new Set<string>();
    for (let k = 0; k < count; k++) {
      if (this.u32(p) !== SIG_CENTRAL) this.fail(`central directory entry ${k} is damaged`);
      const flags = this.u16(p + 8);
      const method = this.u16(p + 10);
      const crc = this.u32(p + 16);
      let compressedSize = this.u32(p + 20);
      let size = this.u32(p + 24);
      const nameLen = this.u16(p + 28);
      const extraLen = this.u16(p + 30);
      const commentLen = this.u16(p + 32);
      let localOffset = this.u32(p + 42);
      if (p + 46 + nameLen > b.length) this.fail('truncated central directory');
      const name = memberName(b.subarray(p + 46, p + 46 + nameLen), flags);
      if (flags & 1) this.fail(`member ${name} is encrypted`);
      // zip64 extra field (id 1): only the values that were 0xFFFFFFFF above follow, in this order.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = this.u16(e);
        const len = this.u16(e + 2);
        if (id === 1) {
          let q = e + 4;
          const fieldEnd = q + len;
          const next = (): number => {
            if (q + 8 > fieldEnd) this.fail(`zip64 field of member ${name} is too short`);
            q += 8;
            return this.u64(q - 8);
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localOffset === 0xffffffff) localOffset = next();
        }
        e += 4 + len;
      }
      if (seen.has(name)) this.fail(`member ${name} appears twice`);
      seen.add(name);
      this.entries.push({ name, method, compressedSize, size, crc, localOffset });
      p = eEnd + commentLen;
    }
  }

  names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /**
   * The local header's view of a member must match the directory's: the same name and method, and the
   * same CRC and sizes unless they follow the data (flag bit 3) or sit in a zip64 field.
   */
  private checkLocal(e: ZipEntry): number {
    const at = e.localOffset;
    if (this.u32(at) !== SIG_LOCAL) this.fail(`local header of ${e.name} is damaged`);
    const flags = this.u16(at + 6);
    const nameLen = this.u16(at + 26);
    const start = at + 30 + nameLen + this.u16(at + 28);
    if (at + 30 + nameLen > this.bytes.length) this.fail('truncated local header');
    const localName = memberName(this.bytes.subarray(at + 30, at + 30 + nameLen), flags);
    const disagree = (what: string, local: number | string, central: number | string): never =>
      this.fail(`member ${e.name}: the local header says ${what} ${local}, the central directory ${central}`);
    if (localName !== e.name) disagree('name', quoted(localName), quoted(e.name));
    if (this.u16(at + 8) !== e.method) disagree('method', this.u16(at + 8), e.method);
    if (!(flags & 8)) {
      if (this.u32(at + 14) !== e.crc) disagree('CRC', this.u32(at + 14), e.crc);
      const csize = this.u32(at + 18);
      const size = this.u32(at + 22);
      if (csize !== 0xffffffff && csize !== e.compressedSize) disagree('compressed size', csize, e.compressedSize);
      if (size !== 0xffffffff && size !== e.size) disagree('size', size, e.size);
    }
    return start;
  }

  /** The member's uncompressed bytes, CRC-checked; never more than it declares. */
  read(name: string): Uint8Array {
    const e = this.entries.find((x) => x.name === name);
    if (!e) return this.fail(`no member ${name}`);
    const start = this.checkLocal(e);
    const end = start + e.compressedSize;
    if (end > this.bytes.length) this.fail(`member ${name} runs past the end of the file (truncated?)`);
    const raw = this.bytes.subarray(start, end);
    let out: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size)
        this.fail(`member ${name} is stored (not compressed) but its sizes differ: ${e.compressedSize} stored, ${e.size} declared`);
      out = raw;
    } else if (e.method === 8) {
      const declared = `member ${name} declares ${formatBytes(e.size)} uncompressed`;
      if (e.size > MAX_BUFFER) this.fail(`${declared}, more than one buffer can hold`);
      this.budget?.take(this.subject, e.size, declared);
      try {
        // maxOutputLength: inflating stops with an error as soon as the output would pass the size
        // the directory declared (at least 1: zlib refuses 0, and an empty member is checked below).
        out = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ERR_BUFFER_TOO_LARGE') return this.fail(`member ${name} inflates to more than the ${e.size} bytes its directory entry declares`);
        return this.fail(`member ${name} does not inflate: ${(err as Error).message}`);
      }
    } else return this.fail(`member ${name} uses compression method ${e.method}; only stored (0) and deflate (8) are supported`);
    if (out.length !== e.size) this.fail(`member ${name} is ${out.length} bytes, the directory says ${e.size}`);
    if (crc32(out) !== e.crc) this.fail(`member ${name} fails its CRC-32 check (corrupt)`);
    return out;
  }
}
