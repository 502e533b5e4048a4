// Whether this browser draws WebGL in software (no GPU: SwiftShader, Mesa's llvmpipe, Windows'
// Basic Render Driver), asked by the plotly.js bundle when it creates a WebGL context
// (frontend/plotly/build.js, patch "gl-antialias-hook"): there the context is made without
// multisampling (issue 12). Software multisampling cost the ToC2ME map 0.04-0.12 s of its cold
// load (page A/Bs of 8 and 10 loads: 1.43 -> 1.39 s, 1.51 -> 1.39 s; inner loop, the map
// figure alone: 742 -> 585 ms), for ball edges one pixel step smoother on a 1x screen. With a
// GPU, multisampling is nearly free and stays on.
// The renderer is read from a throwaway context (7-9 ms in software), once per tab (sessionStorage).
(function () {
    'use strict';
    if (window.fmSoftwareWebgl) { return; }
    const SOFTWARE = /SwiftShader|llvmpipe|softpipe|Software Rasterizer|Basic Render Driver|Apple Software Renderer/i;
    const KEY = 'fm-software-webgl';
    let known;

    function isSoftwareRenderer(name) {
        return SOFTWARE.test(String(name || ''));
    }

    function rendererName() {
        const gl = document.createElement('canvas').getContext('webgl');
        if (!gl) { return ''; }
        const info = gl.getExtension('WEBGL_debug_renderer_info');
        const name = gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
        const lose = gl.getExtension('WEBGL_lose_context');
        if (lose) { lose.loseContext(); }  // browsers cap live contexts: give this one back now
        return name;
    }

    window.fmSoftwareWebgl = function () {
        if (known !== undefined) { return known; }
        try {
            const cached = window.sessionStorage.getItem(KEY);
            if (cached === '1' || cached === '0') { return (known = cached === '1'); }
        } catch (e) { /* storage off: ask the renderer */ }
        try {
            known = isSoftwareRenderer(rendererName());
        } catch (e) {
            known = false;  // unknown: keep plotly.js's default (multisampled)
        }
        try { window.sessionStorage.setItem(KEY, known ? '1' : '0'); } catch (e) { /* not kept */ }
        return known;
    };
    window.fmSoftwareWebgl.isSoftwareRenderer = isSoftwareRenderer;
})();
