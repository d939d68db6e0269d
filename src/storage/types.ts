/** Storage: where job outputs live, behind one small interface per scheme. */
import type { Writable } from "node:stream";

/** One stored object. */
export interface ObjectInfo {
  /** Its full location (path or URL). */
  location: string;
  /** Size in bytes. */
  size: number;
  /** Last modification time. */
  modified: Date;
  /** The store's checksum tag, where it keeps one (S3's ETag, without quotes). */
  etag?: string;
}

/** Progress of a transfer, in bytes. */
export type ProgressListener = (done: number, total: number) => void;

/** A place that holds objects: a local folder, a bucket. */
export interface Storage {
  /** Copy a local file to `location`, replacing what is there; `onProgress` hears about the bytes sent, last with done === total. */
  upload(file: string, location: string, onProgress?: ProgressListener): Promise<void>;
  /**
   * Copy `location` to the local `file`, atomically; `onProgress` hears about the bytes moved.
   * `inOrder`, when given, receives the bytes in order while the download goes on (so they can be
   * unpacked meanwhile); it is ended once the download is complete and checked, destroyed if it fails.
   */
  download(location: string, file: string, onProgress?: ProgressListener, inOrder?: Writable): Promise<void>;
  /** Every object whose location starts with `prefix` (recursively). */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** The object at `location`, or undefined when there is none. */
  stat(location: string): Promise<ObjectInfo | undefined>;
  /** A local path at which the object can be read without copying, when the storage is local. */
  localPath?(location: string): string;
}
