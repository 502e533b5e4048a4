// With accounts (app.py --users FILE) the server answers the page's Dash requests with 401
// once the session has ended (logged out in another tab, expired, password changed, account
// removed). Go to the login page, and back to this view afterwards, instead of leaving a page
// that silently stops updating. Without accounts the server never answers 401: no effect.
(function () {
    if (window.__fmSessionWatch) { return; }
    window.__fmSessionWatch = true;
    const origFetch = window.fetch.bind(window);
    window.fetch = function (...args) {
        return origFetch(...args).then(function (resp) {
            if (resp.status === 401 && String(resp.url).indexOf('/_dash-') >= 0) {
                let prefix = '/';
                try {
                    prefix = JSON.parse(document.getElementById('_dash-config').textContent)
                        .requests_pathname_prefix || '/';
                } catch (e) { /* default prefix */ }
                const here = window.location.pathname + window.location.search;
                window.location.assign(prefix + 'login?next=' + encodeURIComponent(here));
            }
            return resp;
        });
    };
})();
