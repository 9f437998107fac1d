/**
 * Text from models and data (node, input and file names, producers, metadata, class folders) is
 * written by strangers. On a terminal, control characters in it act: ESC and CSI (C1 0x9b) clear the
 * screen or move the cursor, OSC sets the window title or writes the clipboard, CR overwrites a line,
 * LF forges one, and bidi overrides make text read differently from its bytes. Everything the CLI
 * prints passes through printable(), so such characters show as escapes instead of acting.
 */

/**
 * C0 controls (LF and TAB included: a name must not start a line or jump a column), DEL, C1
 * controls, the bidi embeddings, overrides, isolates and marks, and the Unicode line separators.
 */
const BEYOND_C0 = '\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069';
const UNPRINTABLE = new RegExp(`[\\u0000-\\u001f${BEYOND_C0}]`, 'gu');
/** what JSON.stringify leaves raw: it escapes C0 in strings, and its own line breaks must stay */
const RAW_IN_JSON = new RegExp(`[${BEYOND_C0}]`, 'gu');

const escapeChar = (c: string): string => {
  const n = c.codePointAt(0)!;
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
};

/**
 * `s` with every control character written as `\xNN` or `\u{NNNN}`. The escapes are plain ASCII, so
 * printable(printable(s)) === printable(s): formatting layers may each apply it.
 */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, escapeChar);
}

/** printable() per line: the newlines of text the tool composed itself survive, nothing else does. */
export function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n');
}

/** JSON text with DEL, C1, bidi and separator characters as \uXXXX: the same value, inert on a terminal. */
export function printableJson(json: string): string {
  return json.replace(RAW_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
