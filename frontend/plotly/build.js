// Builds the dashboard's plotly.js bundle with plotly.js's own esbuild settings
// (node_modules/plotly.js/esbuild-config.js: its plugins, aliases and defines) and a banner
// naming the plotly.js version, which tests/test_plotly_bundle.py compares with the version
// the Python plotly package writes figures for.
//
// Why: the full plotly.min.js (4.8 MB) took 1.3-1.6 s of main-thread evaluation on every
// cold page load; this bundle (~1.6 MB) holds only what the pages draw.
// Usage: node build.js OUTFILE   (make install runs it through `npm run build`)
'use strict';
const path = require('path');
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');

const out = process.argv[2];
if (!out) {
    console.error('usage: node build.js OUTFILE');
    process.exit(2);
}
const version = require('plotly.js/package.json').version;
// plotly.js core holds the scatter trace; the others are registered. A figure with any other
// type would draw nothing: tests/test_plotly_bundle.py checks every page's graphs against
// this list (read back from the banner).
const traces = ['scatter', 'bar', 'barpolar', 'heatmap', 'scattergl'];
const entry = [
    "var Plotly = require('plotly.js/lib/core');",
    'Plotly.register([' + traces.filter((t) => t !== 'scatter')
        .map((t) => `require('plotly.js/lib/${t}')`).join(', ') + ']);',
    'module.exports = Plotly;',
].join('\n');

esbuild.build({
    stdin: { contents: entry, resolveDir: __dirname, sourcefile: 'plotly-fm-entry.js' },
    outfile: out,
    format: 'iife',
    globalName: 'Plotly',
    bundle: true,
    minify: true,
    sourcemap: false,
    plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
    alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
    define: { global: 'window', 'define.amd': 'false' },
    target: 'es2016',
    banner: { js: `/*! plotly.js v${version} | traces: ${traces.join(',')} | MIT license, Plotly, Inc. */` },
    logLevel: 'warning',
}).catch(() => process.exit(1));
