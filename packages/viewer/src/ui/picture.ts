/**
 * Pictures from sealed blobs (thumbnails, snapshots) drawn on a canvas from their bytes: no URL,
 * so the strict CSP needs no `img-src blob:`/`data:`.
 */
import { h } from './dom.js';

/** A canvas that shows the JPEG `bytes` once decoded (stays blank if they do not decode). */
export function pictureCanvas(bytes: Uint8Array, cls: string): HTMLCanvasElement {
  const c = h('canvas', { class: cls, 'aria-hidden': 'true' });
  void createImageBitmap(new Blob([bytes as BlobPart], { type: 'image/jpeg' }))
    .then((bmp) => {
      c.width = bmp.width;
      c.height = bmp.height;
      c.getContext('2d')?.drawImage(bmp, 0, 0);
      bmp.close();
      c.dataset.drawn = 'true';
    })
    .catch(() => undefined);
  return c;
}

/** Bytes of standard base64 (the record's `thumb`); empty when it is not base64. */
export function fromB64(s: string): Uint8Array {
  try {
    return Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
  } catch {
    return new Uint8Array(0);
  }
}
