/** Storage in local folders (plain paths and file:// URLs, already normalised to absolute paths). */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import type { ObjectInfo, ProgressListener, Storage } from "./types.js";

async function copyAtomically(from: string, to: string, onProgress?: ProgressListener): Promise<void> {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const tmp = `${to}.partial-${randomBytes(4).toString("hex")}`;
  const total = fs.statSync(from).size;
  let done = 0;
  const source = fs.createReadStream(from);
  if (onProgress) source.on("data", (chunk) => onProgress((done += chunk.length), total));
  try {
    await pipeline(source, fs.createWriteStream(tmp));
    fs.renameSync(tmp, to);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

function info(location: string, stat: fs.Stats): ObjectInfo {
  return { location, size: stat.size, modified: stat.mtime };
}

/** The local file system as a Storage. */
export const fileStorage: Storage = {
  upload: (file, location, onProgress) => copyAtomically(file, location, onProgress),
  download: (location, file, onProgress) => copyAtomically(location, file, onProgress),
  async list(prefix) {
    const found: ObjectInfo[] = [];
    const walk = (dir: string): void => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.isFile()) found.push(info(full, fs.statSync(full)));
      }
    };
    walk(prefix);
    return found;
  },
  async stat(location) {
    try {
      const stat = fs.statSync(location);
      return stat.isFile() ? info(location, stat) : undefined;
    } catch {
      return undefined;
    }
  },
  localPath: (location) => location,
};
