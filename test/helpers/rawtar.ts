/** Hand-made tar archives, for the entries a well-behaved tar writer refuses to make (`..`, links out, devices). */
import zlib from "node:zlib";

/** One entry. Type flags: "0" file, "1" hard link, "2" symlink, "3" char device, "4" block device, "5" folder, "6" FIFO, "A" a vendor type. */
export interface RawEntry {
  name: string;
  type?: "0" | "1" | "2" | "3" | "4" | "5" | "6" | "A";
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** A 512-byte ustar header. */
function header(entry: RawEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  block.write(entry.name, 0, 100);
  block.write(octal(entry.mode ?? (entry.type === "5" ? 0o755 : 0o644), 8), 100);
  block.write(octal(1000, 8), 108);
  block.write(octal(1000, 8), 116);
  block.write(octal(size, 12), 124);
  block.write(octal(Math.floor(Date.now() / 1000), 12), 136);
  block.write(" ".repeat(8), 148); // the checksum is computed with its own field as spaces
  block.write(entry.type ?? "0", 156);
  block.write(entry.linkname ?? "", 157, 100);
  block.write("ustar\u000000", 257);
  const sum = block.reduce((total, byte) => total + byte, 0);
  block.write(octal(sum, 7) + " ", 148);
  return block;
}

/** The bytes of a tar archive of `entries`, in order, gzipped unless `gzip` is false. */
export function rawTar(entries: readonly RawEntry[], gzip = true): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const content = Buffer.from(entry.content ?? "");
    blocks.push(header(entry, content.length), content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  const bytes = Buffer.concat(blocks);
  return gzip ? zlib.gzipSync(bytes) : bytes;
}
