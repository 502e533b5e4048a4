// The first _dash-layout request says which address is being loaded (header X-FM-Address:
// location.href, URI-encoded), so the server puts that page into the layout it answers
// (components/layout.py, page_container) instead of the renderer asking for it in a second
// round trip (Dash's router callback) before the page's own callbacks can start. Only that
// request is changed; a server that ignores the header answers the plain layout.
(function () {
    if (window.__fmLayoutAddress) { return; }
    window.__fmLayoutAddress = true;
    const origFetch = window.fetch.bind(window);
    window.fetch = function (input, init) {
        const url = (typeof input === 'string') ? input : (input && input.url) || '';
        if (url.split('?')[0].endsWith('_dash-layout')) {
            const headers = Object.assign({}, (init && init.headers) || {},
                                          {'X-FM-Address': encodeURIComponent(window.location.href)});
            return origFetch(input, Object.assign({}, init || {}, {headers: headers}));
        }
        return origFetch(input, init);
    };
})();
