/**
 * Text taken from inside a data file (a zip member's name, an .npy header, a CSV cell) and put into a
 * message: written with the escapes every printed name gets (printable()), so a message stays one visible
 * line whatever the file holds, and no control character reaches a terminal through it.
 */
import { printable } from '../printable.js';

/** `s` in double quotes, its own quotes and backslashes escaped, then its control characters. */
export function quoted(s: string): string {
  return `"${printable(s.replace(/["\\]/g, '\\$&'))}"`;
}
