/* Keyboard shortcuts of the event page (/event/<id>, pages/event.py).
 *
 * Up / Down arrow: pick the first motion of the current station (as shown in the traces),
 * 0: undetermined, Backspace / Delete: clear the review, Left / Right: previous / next station,
 * Home / End: first / last station. Active only while the event page is shown and the focus is
 * not in a text field. Every key press gets a sequence number and the "ev-key" store
 * (dash_clientside.set_props) receives the recent presses as a list, so presses that come
 * faster than Dash runs callbacks are all handled, in order (pages/event.py processes the
 * ones it has not seen). Captured on window so the station table's own arrow-key navigation
 * does not also react.
 */
(function () {
    "use strict";
    var ACTIONS = {
        ArrowUp: "up", ArrowDown: "down", ArrowLeft: "prev", ArrowRight: "next",
        "0": "zero", Backspace: "reset", Delete: "reset", Home: "first", End: "last"
    };
    var TEXT_TYPES = {text: 1, number: 1, search: 1, email: 1, password: 1, url: 1, tel: 1};

    function isTextField(el) {
        if (!el) { return false; }
        var tag = (el.tagName || "").toUpperCase();
        if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) { return true; }
        if (tag === "INPUT") { return !!TEXT_TYPES[(el.type || "text").toLowerCase()]; }
        return false;
    }

    function requestId() {
        if (window.crypto && typeof window.crypto.randomUUID === "function") {
            return window.crypto.randomUUID().replace(/-/g, "");
        }
        return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
    }

    var seq = 0;
    var recent = [];

    window.addEventListener("keydown", function (e) {
        if (!document.getElementById("ev-page")) { return; }
        if (e.altKey || e.ctrlKey || e.metaKey || e.isComposing) { return; }
        var action = ACTIONS[e.key];
        if (!action || isTextField(e.target)) { return; }
        if (!window.dash_clientside || typeof window.dash_clientside.set_props !== "function") { return; }
        e.preventDefault();
        e.stopPropagation();
        seq += 1;
        recent.push({seq: seq, action: action, id: requestId()});
        if (recent.length > 50) { recent = recent.slice(-50); }
        window.dash_clientside.set_props("ev-key", {data: {seq: seq, events: recent.slice()}});
    }, true);
})();
