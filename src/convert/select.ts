/** Node selection for --include/--exclude: shell-style globs or /regular expressions/. */
import { UserError } from '../errors.js';

export type NameMatcher = (name: string) => boolean;

/** A matcher for one pattern; an invalid /regex/ is a UserError about `subject` (the flag or option naming it). */
export function patternMatcher(pattern: string, subject = 'pattern'): NameMatcher {
  const re = /^\/(.*)\/([a-z]*)$/.exec(pattern);
  if (re) {
    let rx: RegExp;
    try {
      rx = new RegExp(re[1]!, re[2]);
    } catch (e) {
      throw new UserError(subject, `'${pattern}' is not a valid /regular expression/: ${(e as Error).message}`);
    }
    return (name) => rx.test(name);
  }
  const glob = new RegExp(
    '^' +
      pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
  );
  return (name) => glob.test(name);
}

/** Include-list (empty: everything) minus exclude-list; a node matches by its name or its first output. */
export function selection(include: string[] = [], exclude: string[] = []): (names: string[]) => boolean {
  const inc = include.map((p) => patternMatcher(p, 'include'));
  const exc = exclude.map((p) => patternMatcher(p, 'exclude'));
  return (names) => (inc.length === 0 || names.some((n) => inc.some((m) => m(n)))) && !names.some((n) => exc.some((m) => m(n)));
}
