/* Put back the browser's own trim/parseInt/parseFloat that Dash's @babel/polyfill (core-js 2)
 * replaced with slower JavaScript; the <head> kept them (components/native_builtins.py).
 * This file sorts first among the assets: it runs after the polyfill, before plotly.js. */
(function () {
    var kept = window.__fmNativeBuiltins;
    if (!kept) { return; }
    for (var i = 0; i < kept.length; i++) {
        var owner = kept[i][0], name = kept[i][1], fn = kept[i][2];
        if (typeof fn === "function" && owner[name] !== fn) {
            Object.defineProperty(owner, name, {value: fn, writable: true, configurable: true, enumerable: false});
        }
    }
    delete window.__fmNativeBuiltins;
})();
