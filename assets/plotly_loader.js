/* plotly.js is evaluated while the server computes the page's figures, not before.
 *
 * app.py preloads plotly.min.js (link#fm-plotly-preload). dcc.Graph loads it with
 * `Promise.resolve(window.Plotly || <insert a script tag>)` when the first graph mounts:
 * the script then ran at once (~1.5 s on the main thread) and the page's initial callbacks
 * were only sent after it, so the server's time for the figures came on top. Until
 * plotly.js has run, window.Plotly is a placeholder "thenable": the graph waits on it, and
 * the script tag is inserted when the browser is next idle (after the renderer has sent
 * the callbacks, while it waits for their answers) or after 1 s at the latest.
 * plotly.min.js ends with `window.Plotly = Plotly`, replacing the placeholder; nothing else
 * in the app uses window.Plotly before a graph is drawn. Without the preload link (scripts
 * from a CDN), nothing is changed. */
(function () {
    var link = document.getElementById('fm-plotly-preload');
    if (!link || window.Plotly) { return; }
    var loading = null;
    function load() {
        if (!loading) {
            loading = new Promise(function (resolve, reject) {
                var insert = function () {
                    var s = document.createElement('script');
                    s.src = link.href;
                    s.async = true;
                    s.onload = function () { resolve(window.Plotly); };
                    s.onerror = reject;
                    document.head.appendChild(s);
                };
                if (window.requestIdleCallback) { window.requestIdleCallback(insert, {timeout: 1000}); }
                else { setTimeout(insert, 0); }
            });
        }
        return loading;
    }
    window.Plotly = {then: function (ok, fail) { return load().then(ok, fail); }};
}());
