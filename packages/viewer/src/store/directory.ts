/**
 * The device directory: the devices this browser has paired with (their records in IndexedDB, see
 * devices.ts) and what is known of each right now (online or not, from the rendezvous's presence
 * frames; its camera list or refusal, from the device's sealed replies). The screens read it; the
 * app shell writes the live state into it.
 *
 * The list is re-read from the database after every change, so it holds only records that pass the
 * pin check on load (a tampered record never becomes a pinned key).
 */
import { decodeId } from '@hearth/protocol';
import {
  type DeviceRecords,
  forgetDevice,
  listDevices,
  type PairedDevice,
  renameDevice,
  saveDevice,
} from './devices.js';

/** A camera of a device, as the device lists it. */
export interface CameraEntry {
  readonly name: string;
  readonly online: boolean;
}

/** Camera list of a device, as last reported by it: the list, a refusal code, or nothing yet. */
export type Cameras = { list: readonly CameraEntry[] } | { refused: string } | undefined;

export class DeviceDirectory {
  private devices: PairedDevice[] = [];
  private readonly presence = new Map<string, boolean>();
  private readonly cameraLists = new Map<string, Cameras>();

  constructor(private readonly db: DeviceRecords) {}

  /** (Re-)read the paired devices from the database, oldest pairing first. */
  async load(): Promise<void> {
    this.devices = await listDevices(this.db);
  }

  /** The paired devices, oldest pairing first. */
  all(): readonly PairedDevice[] {
    return this.devices;
  }

  get size(): number {
    return this.devices.length;
  }

  ids(): string[] {
    return this.devices.map((d) => d.deviceId);
  }

  find(deviceId: string): PairedDevice | undefined {
    return this.devices.find((d) => d.deviceId === deviceId);
  }

  isPaired(deviceId: string): boolean {
    return this.devices.some((d) => d.deviceId === deviceId);
  }

  /** The device key pinned at pairing, raw, or undefined for a device we did not pair with. */
  pinnedKey(deviceId: string): Uint8Array | undefined {
    const d = this.find(deviceId);
    return d ? decodeId('deviceKey', d.deviceKey) : undefined;
  }

  /** Store a pairing result (refused unless the key hashes to the device ID) and re-read the list. */
  async add(d: PairedDevice): Promise<void> {
    await saveDevice(this.db, d);
    await this.load();
  }

  /** Rename a device (the label stays on this browser; cut to 64 characters) and re-read the list. */
  async rename(deviceId: string, label: string): Promise<void> {
    await renameDevice(this.db, deviceId, label);
    await this.load();
  }

  /** Forget a device (its pinned key is deleted) and re-read the list. */
  async forget(deviceId: string): Promise<void> {
    await forgetDevice(this.db, deviceId);
    await this.load();
  }

  /** Whether the device is online, as the rendezvous last said; undefined before it said. */
  online(deviceId: string): boolean | undefined {
    return this.presence.get(deviceId);
  }

  /** Record a presence frame; returns what was known before it. */
  setOnline(deviceId: string, online: boolean): boolean | undefined {
    const was = this.presence.get(deviceId);
    this.presence.set(deviceId, online);
    return was;
  }

  cameras(deviceId: string): Cameras {
    return this.cameraLists.get(deviceId);
  }

  /** The device listed its cameras. */
  setCameras(deviceId: string, list: readonly CameraEntry[]): void {
    this.cameraLists.set(deviceId, { list });
  }

  /** The device refused to list its cameras to us (an ACL code). */
  setRefused(deviceId: string, code: string): void {
    this.cameraLists.set(deviceId, { refused: code });
  }
}
