/**
 * The agent's private files (device key, ACL, pairing state): written atomically and fsynced with
 * mode 0600, refused when others may read them. One rule with the server's, in @hearth/node.
 */
export { readPrivateFile, writePrivateFile } from '@hearth/node';
