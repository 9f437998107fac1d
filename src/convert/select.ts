/** Node selection for --include/--exclude: shell-style globs or /regular expressions/. */

export type NameMatcher = (name: string) => boolean;

export function patternMatcher(pattern: string): NameMatcher {
  const re = /^\/(.*)\/([a-z]*)$/.exec(pattern);
  if (re) {
    const rx = new RegExp(re[1]!, re[2]);
    return (name) => rx.test(name);
  }
  const glob = new RegExp(
    '^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$',
  );
  return (name) => glob.test(name);
}

/** Include-list (empty: everything) minus exclude-list; a node matches by its name or its first output. */
export function selection(include: string[] = [], exclude: string[] = []): (names: string[]) => boolean {
  const inc = include.map(patternMatcher);
  const exc = exclude.map(patternMatcher);
  return (names) =>
    (inc.length === 0 || names.some((n) => inc.some((m) => m(n)))) && !names.some((n) => exc.some((m) => m(n)));
}
