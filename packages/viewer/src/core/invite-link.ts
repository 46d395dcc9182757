/**
 * Invite links (`<viewer origin>/#/invite/<payload>`): the viewer reads them with protocol's strict
 * decoder (protocol invite.ts, which also makes them). The secret lives only in the URL fragment;
 * the app takes the link out of the address bar at once.
 */
import { decodeInviteLink, INVITE_ROUTE, type InviteLink } from '@hearth/protocol';

/** The invite of a `#/invite/<payload>` route, or undefined when it is not a valid one. */
export function parseInviteFragment(payload: string): InviteLink | undefined {
  try {
    return decodeInviteLink(`${INVITE_ROUTE}${payload}`);
  } catch {
    return undefined;
  }
}
