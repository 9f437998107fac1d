/**
 * The layer order of src/ (issue 10), checked by `npm run deps` (part of `npm test`) on the compiled
 * dist/src: TypeScript 7 has no compiler API for dependency-cruiser to parse .ts with, and the emitted
 * .js (value imports) plus .d.ts (the type imports of exported declarations) carry the same edges.
 *
 * Layers, lowest first; a module imports only from its own layer or below:
 *   root (errors, printable, atomic, fsguard, version) < onnx < runtime (host tensors, execution providers)
 *   < data < {convert, train, eval} < serve < {experiment, pipeline} < cli < index (the library's surface).
 * Within the middle layer train may use convert (the ALReLU matcher, parameter selection) and eval (metrics);
 * convert and eval use neither train nor each other. experiment and pipeline are siblings that stay apart.
 */
const LAYERS = [
  ['root', '^dist/src/(?!index\\.)[^/]+$'],
  ['onnx', '^dist/src/onnx/'],
  ['runtime', '^dist/src/runtime/'],
  ['data', '^dist/src/data/'],
  ['convert/train/eval', '^dist/src/(convert|train|eval)/'],
  ['serve', '^dist/src/serve/'],
  ['experiment/pipeline', '^dist/src/(experiment|pipeline)/'],
  ['cli', '^dist/src/cli/'],
  ['index', '^dist/src/index\\.'],
];

const upward = LAYERS.slice(0, -1).map(([name, path], i) => ({
  name: `layer-${name.replace(/\//g, '-')}`,
  comment: `${name} imports only from its own layer or below (${LAYERS.slice(0, i + 1).map(([n]) => n).join(' < ')})`,
  severity: 'error',
  from: { path },
  to: { path: LAYERS.slice(i + 1).map(([, p]) => `(${p})`).join('|') },
}));

const sideways = [
  ['convert', '^dist/src/convert/', '^dist/src/(train|eval)/'],
  ['eval', '^dist/src/eval/', '^dist/src/(train|convert)/'],
  ['experiment', '^dist/src/experiment/', '^dist/src/pipeline/'],
  ['pipeline', '^dist/src/pipeline/', '^dist/src/experiment/'],
].map(([name, from, to]) => ({
  name: `sibling-${name}`,
  comment: `${name} does not import its sibling ${to.replace(/^\^dist\/src\/|\/$/g, '')}`,
  severity: 'error',
  from: { path: from },
  to: { path: to },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'no import cycles',
      severity: 'error',
      from: { path: '^dist/src/' },
      // lazy import()s count too: a cycle they close is still a cycle in the design
      to: { circular: true },
    },
    ...upward,
    ...sideways,
    {
      name: 'page-is-browser-code',
      // the .js files hold exactly the run-time imports; the .d.ts ones may name types from anywhere
      comment: 'runtime/page runs in the browser, served file by file: its .js imports only its own folder (no node:, no packages)',
      severity: 'error',
      from: { path: '^dist/src/runtime/page/[^/]+\\.js$' },
      to: { pathNot: '^dist/src/runtime/page/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'every relative import resolves (a moved module left an importer behind)',
      severity: 'error',
      from: { path: '^dist/src/' },
      to: { couldNotResolve: true, dependencyTypes: ['local'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
  },
};
