// Builds the dashboard's plotly.js bundle with plotly.js's own esbuild settings
// (node_modules/plotly.js/esbuild-config.js: its plugins, aliases and defines) and a banner
// naming the plotly.js version, which tests/test_plotly_bundle.py compares with the version
// the Python plotly package writes figures for.
//
// Why: the full plotly.min.js (4.8 MB) took 1.3-1.6 s of main-thread evaluation on every
// cold page load; this bundle (~1.6 MB) holds only what the pages draw.
// Also writes regenerator-runtime, minified, to RUNTIME_OUTFILE: the one part of Dash's
// @babel/polyfill (core-js 2 + regenerator) that today's browsers lack and Dash's bundles
// call (regeneratorRuntime.mark/wrap); components/lean_runtime.py serves it in the polyfill's place.
// Usage: node build.js OUTFILE RUNTIME_OUTFILE   (make install runs it through `npm run build`)
'use strict';
const path = require('path');
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
const fs = require('fs');

const out = process.argv[2];
const runtimeOut = process.argv[3];
if (!out || !runtimeOut) {
    console.error('usage: node build.js OUTFILE RUNTIME_OUTFILE');
    process.exit(2);
}
const version = require('plotly.js/package.json').version;
// plotly.js core holds the scatter trace; the others are registered. A figure with any other
// type would draw nothing: tests/test_plotly_bundle.py checks every page's graphs against
// this list (read back from the banner). No barpolar: the classification page's strike roses
// are server SVG (components/classification_svg.py).
const traces = ['scatter', 'bar', 'heatmap', 'scattergl'];
const entry = [
    "var Plotly = require('plotly.js/lib/core');",
    'Plotly.register([' + traces.filter((t) => t !== 'scatter')
        .map((t) => `require('plotly.js/lib/${t}')`).join(', ') + ']);',
    'module.exports = Plotly;',
].join('\n');

// Source edits, each an exact text that must be found once (the build fails otherwise, so a
// plotly.js or regl upgrade cannot drop one silently). banner.patches lists them; tests read it.
//  regl-cache-key: regl keys its cache of generated draw procedures by a SHA-256 of their
//    source, computed in JavaScript: 76-102 ms of main-thread time per WebGL plot (sampled CPU
//    profile of the ToC2ME map's newPlot, issue 12). The source string itself is an equally
//    exact key and JavaScript hashes it natively. The cache is only looked up by these keys
//    (plotly.js's precompiled strict bundle, the one user of other keys, is not built here).
//  gl-antialias-hook: plotly.js asks for a multisampled WebGL context whatever renders it; in
//    software (no GPU) multisampling cost the ToC2ME map 0.04-0.12 s of its cold load. The context
//    is made without it where assets/software_webgl.js says WebGL is software-rendered (its
//    window.fmSoftwareWebgl; absent, plotly.js's default stands).
const patches = [
    {
        name: 'gl-antialias-hook',
        file: /plotly\.js[\\/]src[\\/]lib[\\/]prepare_regl\.js$/,
        from: 'antialias: !d.pick,',
        to: "antialias: !d.pick && !(typeof window.fmSoftwareWebgl === 'function' && window.fmSoftwareWebgl()),",
    },
    {
        name: 'regl-cache-key',
        file: /@plotly[\\/]regl[\\/]dist[\\/]regl\.unchecked\.js$/,
        from: 'key = hex_sha256(src);',
        to: 'key = src;',
    },
];
const patchPlugin = {
    name: 'fm-patches',
    setup(build) {
        for (const p of patches) {
            build.onLoad({ filter: p.file }, (args) => {
                const src = fs.readFileSync(args.path, 'utf8');
                const found = src.split(p.from).length - 1;
                if (found !== 1) {
                    return { errors: [{ text: `patch ${p.name}: expected 1 "${p.from}" in ${args.path}, found ${found}` }] };
                }
                p.applied = true;
                return { contents: src.replace(p.from, p.to), loader: 'js' };
            });
        }
    },
};

esbuild.build({
    stdin: { contents: entry, resolveDir: __dirname, sourcefile: 'plotly-fm-entry.js' },
    outfile: out,
    format: 'iife',
    globalName: 'Plotly',
    bundle: true,
    minify: true,
    sourcemap: false,
    plugins: [patchPlugin, InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
    alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
    define: { global: 'window', 'define.amd': 'false' },
    target: 'es2016',
    banner: { js: `/*! plotly.js v${version} | traces: ${traces.join(',')} | patches: ${patches.map((p) => p.name).join(',')} | MIT license, Plotly, Inc. */` },
    logLevel: 'warning',
}).then(() => esbuild.build({
    // inlined in the page's <head> as a classic script; it assigns the global regeneratorRuntime
    entryPoints: [require.resolve('regenerator-runtime/runtime.js')],
    outfile: runtimeOut,
    bundle: false,
    format: 'iife',  // its own top-level names (var runtime) stay out of window
    minify: true,
    target: 'es2016',
    banner: { js: `/*! regenerator-runtime v${require('regenerator-runtime/package.json').version} | MIT license, Meta Platforms, Inc. */` },
    logLevel: 'warning',
})).then(() => {
    const missed = patches.filter((p) => !p.applied).map((p) => p.name);
    if (missed.length) {
        console.error(`patches never applied (file not in the bundle): ${missed.join(', ')}`);
        process.exit(1);
    }
}).catch(() => process.exit(1));
