/**
 * Deterministic layers: a tar of explicit entries (sorted, parents first,
 * owner root, times fixed, no user or group names from this machine),
 * gzip-compressed with a fixed header, so the same files give the same
 * digests on any machine and an unchanged rebuild uploads nothing.
 *
 * Tar format: POSIX ustar, with a pax extended header for names ustar cannot hold (IEEE Std 1003.1, pax).
 */
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { MEDIA, sha256, type Layer } from "./image.js";

/** One entry of a layer: a file with its bytes and mode, a folder, or a symbolic link. */
export type LayerEntry =
  | { path: string; kind: "file"; mode: number; bytes: Buffer }
  | { path: string; kind: "dir"; mode?: number }
  | { path: string; kind: "symlink"; target: string };

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function header(name: string, options: { size: number; mode: number; type: string; linkname?: string; prefix?: string }): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, "utf8");
  block.write(octal(options.mode & 0o7777, 8), 100, "ascii");
  block.write(octal(0, 8), 108, "ascii"); // uid
  block.write(octal(0, 8), 116, "ascii"); // gid
  block.write(octal(options.size, 12), 124, "ascii");
  block.write(octal(0, 12), 136, "ascii"); // mtime: fixed
  block.fill(" ", 148, 156); // checksum placeholder
  block.write(options.type, 156, "ascii");
  if (options.linkname) block.write(options.linkname, 157, 100, "utf8");
  block.write("ustar\0", 257, "ascii");
  block.write("00", 263, "ascii");
  block.write("root", 265, "ascii");
  block.write("root", 297, "ascii");
  if (options.prefix) block.write(options.prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(octal(sum, 7) + " ", 148, "ascii");
  return block;
}

function padded(bytes: Buffer): Buffer[] {
  const rest = bytes.length % BLOCK;
  return rest ? [bytes, Buffer.alloc(BLOCK - rest)] : [bytes];
}

/** A pax record `LEN key=value\n`, whose length counts itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length++;
  return `${length}${body}`;
}

/** The headers of one entry; a pax header first when the name or link does not fit ustar. */
function entryHeaders(name: string, options: { size: number; mode: number; type: string; linkname?: string }): Buffer[] {
  const fits = Buffer.byteLength(name) <= 100 && Buffer.byteLength(options.linkname ?? "") <= 100 && /^[\x20-\x7e]*$/.test(name + (options.linkname ?? ""));
  if (fits) return [header(name, options)];
  let records = paxRecord("path", name);
  if (options.linkname) records += paxRecord("linkpath", options.linkname);
  const pax = Buffer.from(records, "utf8");
  return [
    header("PaxHeader", { size: pax.length, mode: 0o644, type: "x" }),
    ...padded(pax),
    header(name.slice(0, 99), { ...options, linkname: options.linkname?.slice(0, 99) ?? "" }),
  ];
}

/** Every folder above `name` (`a/b/c` → `a/`, `a/b/`). */
function parents(name: string): string[] {
  const parts = name.split("/").slice(0, -1);
  return parts.map((_, at) => parts.slice(0, at + 1).join("/") + "/");
}

/** The tar bytes of `entries`: sorted by path, each folder above an entry listed before it, every time and owner fixed. */
export function tarOf(entries: readonly LayerEntry[]): Buffer {
  const byPath = new Map<string, LayerEntry>();
  for (const entry of entries) {
    const name = entry.path.replace(/^\/+/, "").replace(/\/+$/, "");
    for (const dir of parents(name)) if (!byPath.has(dir)) byPath.set(dir, { path: dir, kind: "dir" });
    byPath.set(entry.kind === "dir" ? `${name}/` : name, { ...entry, path: entry.kind === "dir" ? `${name}/` : name });
  }
  const chunks: Buffer[] = [];
  for (const name of [...byPath.keys()].sort()) {
    const entry = byPath.get(name)!;
    if (entry.kind === "dir") chunks.push(...entryHeaders(name, { size: 0, mode: entry.mode ?? 0o755, type: "5" }));
    else if (entry.kind === "symlink") chunks.push(...entryHeaders(name, { size: 0, mode: 0o777, type: "2", linkname: entry.target }));
    else chunks.push(...entryHeaders(name, { size: entry.bytes.length, mode: entry.mode, type: "0" }), ...padded(entry.bytes));
  }
  chunks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(chunks);
}

/** gzip of `tar` with a fixed header (no time, no name, OS "unknown"), so the bytes do not depend on the machine. */
export function gzipFixed(tar: Buffer): Buffer {
  const gz = zlib.gzipSync(tar, { level: 6 });
  gz[9] = 0xff;
  return gz;
}

/** A layer held in memory: `entries` as a deterministic tar.gz. */
export function layerOf(entries: readonly LayerEntry[]): Layer & { bytes: Buffer } {
  const tar = tarOf(entries);
  const bytes = gzipFixed(tar);
  return { digest: sha256(bytes), diffId: sha256(tar), size: bytes.length, mediaType: MEDIA.dockerLayer, bytes, open: () => Readable.from([bytes]) };
}

/** The entries of a folder on disk under `prefix` in the image: every file, folder and link, with its mode's executable bit kept (other bits fixed). */
export function folderEntries(dir: string, prefix: string): LayerEntry[] {
  const entries: LayerEntry[] = [];
  const walk = (relative: string): void => {
    for (const name of fs.readdirSync(path.join(dir, relative)).sort()) {
      const rel = relative ? `${relative}/${name}` : name;
      const full = path.join(dir, rel);
      const stat = fs.lstatSync(full);
      const inImage = `${prefix}/${rel}`;
      if (stat.isSymbolicLink()) entries.push({ path: inImage, kind: "symlink", target: fs.readlinkSync(full) });
      else if (stat.isDirectory()) {
        entries.push({ path: inImage, kind: "dir" });
        walk(rel);
      } else if (stat.isFile()) entries.push({ path: inImage, kind: "file", mode: stat.mode & 0o111 ? 0o755 : 0o644, bytes: fs.readFileSync(full) });
    }
  };
  walk("");
  return entries;
}

/** The ustar header of one plain file of `size` bytes (mode 0644, time and owner fixed), for a tar written as a stream (a docker-archive): the bytes follow, padded to 512. */
export function fileHeader(name: string, size: number): Buffer {
  return Buffer.concat(entryHeaders(name, { size, mode: 0o644, type: "0" }));
}
