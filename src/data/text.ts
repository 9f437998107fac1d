/**
 * Text taken from inside a data file (a zip member's name, an .npy header, a CSV cell) and put into a
 * message: quoted, with everything outside printable ASCII escaped, so that a message stays one
 * visible line whatever the file holds, and no control character reaches a terminal through it.
 */
export function quoted(s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `s` itself where it is all printable ASCII (a plain name reads best bare), else quoted(s). */
export function shown(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : quoted(s);
}
