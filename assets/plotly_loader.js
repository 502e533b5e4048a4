/* plotly.js is evaluated while the server computes the page's figures, not before.
 *
 * app.py preloads plotly.min.js (link#fm-plotly-preload). dcc.Graph loads it with
 * `Promise.resolve(window.Plotly || <insert a script tag>)` when the first graph mounts:
 * the script then ran at once (~1.5 s on the main thread) and the page's initial callbacks
 * were only sent after it, so the server's time for the figures came on top. Until
 * plotly.js has run, window.Plotly is a placeholder "thenable": the graph waits on it, and
 * the script tag is inserted, once a graph has asked, at the first of: the browser is idle
 * (it has sent the callbacks and waits for their answers), the first callback answer
 * arrives (idle callbacks can come late on a busy machine), 1 s.
 * plotly.min.js ends with `window.Plotly = Plotly`, replacing the placeholder; nothing else
 * in the app uses window.Plotly before a graph is drawn. Without the preload link (scripts
 * from a CDN), nothing is changed. */
(function () {
    var link = document.getElementById('fm-plotly-preload');
    if (!link || window.Plotly) { return; }
    var loading = null, insert = null;
    function load() {
        if (!loading) {
            loading = new Promise(function (resolve, reject) {
                insert = function () {
                    if (!insert) { return; }
                    insert = null;
                    var s = document.createElement('script');
                    s.src = link.href;
                    s.async = true;
                    s.onload = function () { resolve(window.Plotly); };
                    s.onerror = reject;
                    document.head.appendChild(s);
                };
                if (window.requestIdleCallback) { window.requestIdleCallback(insert); }
                setTimeout(insert, 1000);
            });
        }
        return loading;
    }
    var origFetch = window.fetch.bind(window);
    window.fetch = function (input, init) {
        var url = (typeof input === 'string') ? input : (input && input.url) || '';
        var out = origFetch(input, init);
        if (url.indexOf('_dash-update-component') >= 0) {
            out.then(function () { if (insert) { setTimeout(insert, 0); } }, function () {});
        }
        return out;
    };
    window.Plotly = {then: function (ok, fail) { return load().then(ok, fail); }};
}());
