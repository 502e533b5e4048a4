"""WebGL without multisampling where the browser renders it in software (issue 12):
``assets/software_webgl.js`` names the renderer, the plotly.js bundle's ``gl-antialias-hook``
patch (``frontend/plotly/build.js``) asks it when it makes the map's WebGL context.

The test browser is headless Chromium without a GPU (SwiftShader): its map context must be
made without multisampling, and the classification of renderer names is checked on names of
software and hardware renderers as browsers report them.
"""
from __future__ import annotations

from pagetools import no_console_errors, start_app, wait

#: (renderer name as UNMASKED_RENDERER_WEBGL reports it, drawn in software)
RENDERERS = [
    ("ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)", True),
    ("Google SwiftShader", True),
    ("llvmpipe (LLVM 15.0.6, 256 bits)", True),
    ("Mesa/X.org, llvmpipe (LLVM 12.0.0, 256 bits)", True),
    ("ANGLE (Microsoft, Microsoft Basic Render Driver Direct3D11 vs_5_0 ps_5_0, D3D11)", True),
    ("Apple Software Renderer", True),
    ("ANGLE (NVIDIA, NVIDIA GeForce RTX 3080 Direct3D11 vs_5_0 ps_5_0, D3D11)", False),
    ("ANGLE (Apple, ANGLE Metal Renderer: Apple M2, Unspecified Version)", False),
    ("Mesa Intel(R) UHD Graphics 620 (KBL GT2)", False),
    ("AMD Radeon Pro 5500M OpenGL Engine", False),
    ("", False),
]

#: whether the map's WebGL context, as plotly.js made it, is multisampled; null until plotly.js
#: has made it (asking a canvas without a context would make one, with the default attributes)
CONTEXT = """
const gd = document.querySelector('#map-graph .js-plotly-plot');
const layer = gd && gd._fullLayout && gd._fullLayout._glcanvas && gd._fullLayout._glcanvas.data()
    .find(d => d.key === 'contextLayer');
return layer && layer.regl ? layer.regl._gl.getContextAttributes().antialias : null;
"""

RENDERER = """
const gl = document.createElement('canvas').getContext('webgl');
const info = gl.getExtension('WEBGL_debug_renderer_info');
return gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
"""


def test_software_webgl_map_context_has_no_multisampling(dash_duo, demo_data_dir):
    start_app(dash_duo, demo_data_dir, "/", window_size=(1400, 900))
    d = dash_duo.driver
    wait(lambda: d.execute_script(CONTEXT) is not None, message="the map's WebGL context")
    antialias = d.execute_script(CONTEXT)
    renderer = d.execute_script(RENDERER)
    software = d.execute_script("return window.fmSoftwareWebgl.isSoftwareRenderer(arguments[0])", renderer)
    assert software, f"the test browser is expected to render WebGL in software, it reports {renderer!r}"
    assert d.execute_script("return window.fmSoftwareWebgl()") is True
    assert antialias is False, "software WebGL: the map's context must be made without multisampling"
    assert d.execute_script("return sessionStorage.getItem('fm-software-webgl')") == "1"  # asked once per tab
    names = [name for name, _ in RENDERERS]
    got = d.execute_script("return arguments[0].map(n => window.fmSoftwareWebgl.isSoftwareRenderer(n))", names)
    assert dict(zip(names, got)) == dict(RENDERERS)
    # a tab whose renderer was found to be a GPU (the answer kept for the tab): multisampled, as
    # plotly.js makes it
    d.execute_script("sessionStorage.setItem('fm-software-webgl', '0')")
    d.refresh()
    wait(lambda: d.execute_script(CONTEXT) is not None, message="the map's WebGL context after the reload")
    assert d.execute_script(CONTEXT) is True
    no_console_errors(dash_duo)
