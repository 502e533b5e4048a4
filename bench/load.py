"""Load test: N simulated users clicking through every page with random filters.

    .venv/bin/python bench/load.py --data-dir DIR --users 20 --seconds 60
    .venv/bin/python bench/load.py --url http://host:8050 --users 5 --seconds 30
                                   [--user NAME --password-file F]

Without ``--url`` the app is started here in a subprocess on a free port, the way it is
served in production (``app.py --host 127.0.0.1 --port P``: waitress, ``--threads`` worker
threads, ``FM_DATA_DIR=DIR``), waited for, and stopped at the end.

**Users** are threads of this process, each with its own HTTP session (``requests``:
cookies, keep-alive, gzip/br like a browser), waiting 1-3 s between actions (uniform, as
locust's ``between(1, 3)``; locust itself is not used: it installs a pytest plugin that
monkey-patches every test run of the environment with gevent). They send the requests
the browser sends: a user does not call page functions, it plays Dash's renderer against
the app's own callback map. It reads ``GET /_dash-layout`` (the shell) and
``GET /_dash-dependencies`` (every callback), keeps
the component tree and its props as the browser would, and fires callbacks as
``POST /_dash-update-component`` with the same body (``output``, ``outputs``, ``inputs``,
``state``, ``changedPropIds``) and in the same order:

* a ``dcc.Location`` that mounts reports the URL (pathname/search/href/hash): that is what
  makes the pages plugin return the page layout and each filter bar check its URL;
* components that appear (a page layout, any ``children`` output) fire the callbacks they
  are an output or an input of, unless ``prevent_initial_call``;
* a changed prop fires every callback it is an input of (not the callback that wrote it);
* a callback waits while one of its inputs is the output of another pending callback;
  callbacks that are ready run concurrently (at most 6 connections per user, as a
  browser); ``MATCH``/``ALL`` ids are resolved against the components present.

Clientside callbacks are the browser's own work and are not sent; an enabled
``dcc.Interval`` with a server callback ticks while the user looks at the page. Each user
first visits every page (users start at different pages), then acts at random:
navigate to a page of the navbar (filters kept, as the navbar links do) or to the event
page of an event seen in the map's table (a full load: HTML, layout, dependencies), change
a filter of the page's bar (clusters, groups, qualities, sources from the bar's own
options, i.e. the data's; a time window inside the catalogue's span; a magnitude range
inside the slider's; colour-by, view), change one of the page's own choices (any
dropdown/radio/checklist the app has a callback on), zoom a graph whose ``relayoutData``
reaches the server (20 % of zooms are a double-click autoscale; a clientside callback
``relayoutData -> Store.data`` is assumed to pass the zoom on, as the map's and the wells
timeline's do), click a row of a table whose ``active_cell`` a server callback reads, or
download a CSV (the bar's
``/download/<table>.csv`` link, or a page's export button). A response counts as an error
unless it is 200 with JSON that has a ``response`` (or 204, Dash's "no update"), or 200 for
the HTML/CSV routes.

The simulated users run in this process and share the machine's CPUs with the app when
both are on one host (parsing the callback JSON costs client CPU too): on a small machine
the figures include that.

Output: per page (the page the request was for; ``download`` for the CSV route) the
number of requests, errors, p50 and p95 latency (request sent -> body read; at the end no
new action starts, and the requests in flight count when they finish within ``--grace``
seconds, so the slowest ones are not cut off); the last
line is exactly one JSON object::

    {"users": N, "requests": R, "errors": E, "p50_ms": ..., "p95_ms": ..., "per_page": {...}}

Login (``--user NAME --password-file F``): the app's form ``POST /login`` with fields
``username``, ``password`` and its hidden ``csrf`` token
that sets a session cookie; each user logs in before its first page and keeps the cookie.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

ROOT = Path(__file__).resolve().parents[1]
CALLBACK = "/_dash-update-component"
MAX_CALLBACKS_PER_ACTION = 60  # a runaway chain of callbacks is cut here
BROWSER_CONNECTIONS = 6        # concurrent requests per user (a browser's per-host limit)
REQUEST_TIMEOUT = 120          # s; a request that takes longer is an error

#: the pages every user visits first (then at random); "/event/" = an event seen in the map's table
TOUR = ["/", "/magnitudes", "/classification", "/strike-time", "/diffusion", "/wells", "/model", "/event/"]


def tour(n: int, users: int) -> list[str]:
    """User ``n``'s first pages: every page, users spread over different starting pages
    (so a few users cover all pages quickly), the event page right after the map (its
    event comes from the map's table)."""
    pages = [p for p in TOUR if p != "/event/"]
    k = (n * len(pages)) // max(users, 1) % len(pages)
    out = pages[k:] + pages[:k]
    out.insert(out.index("/") + 1, "/event/")
    return out


#: action -> weight
ACTIONS = {"navigate": 27, "filter": 35, "page_control": 12, "zoom": 10, "select": 6, "download": 4, "event": 4,
           "reload": 2}


# -- results --------------------------------------------------------------------------------
class Recorder:
    """Every request of every user: (page, milliseconds, ok); a few error samples."""

    def __init__(self):
        self.rows: list[tuple[str, float, bool]] = []
        self.samples: list[str] = []
        self.recording = True
        self.trace = False

    def add(self, page: str, ms: float, ok: bool, what: str = "", name: str = "") -> None:
        if not self.recording:
            return
        if self.trace:
            print(f"  {page:<14}{ms:>8.0f} ms {'ok ' if ok else 'ERR'} {what[:150]}", file=sys.stderr, flush=True)
        self.rows.append((page, ms, ok, name or what[:60]))
        if not ok and len(self.samples) < 8:
            self.samples.append(f"{page}: {what}"[:400])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(rec: Recorder, users: int) -> dict:
    def stats(rows):
        ms = [r[1] for r in rows]
        p50, p95 = percentile(ms, 50), percentile(ms, 95)
        return {"requests": len(rows), "errors": sum(1 for r in rows if not r[2]),
                "p50_ms": None if p50 is None else round(p50, 1), "p95_ms": None if p95 is None else round(p95, 1)}

    pages = sorted({r[0] for r in rec.rows})
    return {"users": users, **stats(rec.rows), "per_page": {p: stats([r for r in rec.rows if r[0] == p])
                                                             for p in pages}}


# -- Dash ids and callbacks -----------------------------------------------------------------
def sid(cid) -> str:
    """Dash's string form of an id (dict ids: JSON with sorted keys, no spaces)."""
    return json.dumps(cid, sort_keys=True, separators=(",", ":")) if isinstance(cid, dict) else str(cid)


def _split(spec: str):
    idpart, prop = spec.rsplit(".", 1)
    return (json.loads(idpart) if idpart.startswith("{") else idpart), prop


def _is_wild(v) -> bool:
    return isinstance(v, list) and len(v) == 1 and v[0] in ("ALL", "MATCH", "ALLSMALLER")


class Callback:
    """One entry of ``/_dash-dependencies``."""

    def __init__(self, index: int, dep: dict):
        self.index = index
        self.output = dep["output"]
        self.multi = self.output.startswith("..") and self.output.endswith("..")
        parts = self.output[2:-2].split("...") if self.multi else [self.output]
        self.outputs = [_split(p) for p in parts]
        self.inputs = [(d["id"] if isinstance(d["id"], dict) else _maybe_json(d["id"]), d["property"])
                       for d in dep["inputs"]]
        self.state = [(d["id"] if isinstance(d["id"], dict) else _maybe_json(d["id"]), d["property"])
                      for d in dep.get("state", [])]
        self.clientside = bool(dep.get("clientside_function"))
        self.prevent_initial = bool(dep.get("prevent_initial_call"))
        self.match_ref = next((p for p, _ in self.outputs + self.inputs
                               if isinstance(p, dict) and any(v == ["MATCH"] for v in p.values())), None)
        self.input_props = {prop.split("@")[0] for _, prop in self.inputs}
        #: short name for the report: the first output, wildcard ids by their type
        first, prop = self.outputs[0]
        name = first.get("type", sid(first)) if isinstance(first, dict) else first
        self.label = f"{name}.{prop.split('@')[0]}" + (f" +{len(self.outputs) - 1}" if len(self.outputs) > 1 else "")


def _maybe_json(s):
    return json.loads(s) if isinstance(s, str) and s.startswith("{") else s


def _matches(pattern, cid, binding=None) -> bool:
    if not isinstance(pattern, dict):
        return pattern == cid
    if not isinstance(cid, dict) or set(cid) != set(pattern):
        return False
    for k, v in pattern.items():
        if v == ["MATCH"] and binding is not None:
            if cid[k] != binding.get(k):
                return False
        elif not _is_wild(v) and cid[k] != v:
            return False
    return True


def apply_patch(target, operations: list):
    """``target`` (a prop value) with the operations of a ``dash.Patch`` applied, as the
    renderer does; unknown operations are skipped."""
    root = {"v": target}  # edited in place: the browser state owns the value
    for op in operations:
        try:
            path, params, name = ["v", *op.get("location", [])], op.get("params") or {}, op.get("operation")
            parent = root
            for k in path[:-1]:
                parent = parent[k]
            last = path[-1]
            if name == "Assign":
                parent[last] = params.get("value")
            elif name == "Merge":
                parent[last].update(params.get("value") or {})
            elif name == "Delete":
                del parent[last]
            elif name in ("Extend", "Append", "Prepend", "Insert", "Clear", "Remove"):
                seq = parent[last]
                if name == "Extend":
                    seq.extend(params.get("value") or [])
                elif name == "Append":
                    seq.append(params.get("value"))
                elif name == "Prepend":
                    seq.insert(0, params.get("value"))
                elif name == "Insert":
                    seq.insert(params.get("index", 0), params.get("value"))
                elif name == "Clear":
                    seq.clear()
                elif params.get("value") in seq:
                    seq.remove(params.get("value"))
        except (KeyError, IndexError, TypeError, AttributeError):
            continue
    return root["v"]


# -- one simulated browser ------------------------------------------------------------------
class Browser:
    """The state a browser tab holds for the app (component tree, props, URL) and the
    requests its renderer sends. ``http`` is the user's ``requests.Session``, ``base`` the
    app's URL."""

    #: event ids seen in the map page's table, shared by all users (for the event page)
    event_ids: list[str] = []

    def __init__(self, http: requests.Session, base: str, rec: Recorder, rng: random.Random):
        self.http, self.base, self.rec, self.rng = http, base.rstrip("/"), rec, rng
        self.pool = ThreadPoolExecutor(BROWSER_CONNECTIONS)
        self.stopping = threading.Event()  # set at the end of the run: no further callbacks
        self.callbacks: list[Callback] = []
        self.comps: dict[str, dict] = {}            # sid -> component dict (type, namespace, props)
        self.ids: dict[str, object] = {}            # sid -> id
        self.owned: dict[tuple[str, str], set] = {}  # (sid, prop) -> sids of components inside it
        self.path, self.search = "/", ""
        self.page = "map"
        self.pages: list[str] = []
        self.shown_at = time.monotonic()   # when the current page was shown (for dcc.Interval)

    # -- HTTP ---------------------------------------------------------------------------
    def _get(self, url: str, page: str, *, json_body: bool = False, stream: bool = False):
        t = time.perf_counter()
        try:
            # no redirects: none of the app's routes redirects, so one is an error (e.g. to a login page)
            with self.http.get(self.base + url, stream=stream, timeout=REQUEST_TIMEOUT, allow_redirects=False) as r:
                if stream:
                    for _ in r.iter_content(65536):  # the whole CSV, as a browser saves it
                        pass
                ok = r.status_code == 200
                data = None
                if ok and json_body:
                    try:
                        data = r.json()
                    except ValueError:
                        ok = False
                ms = (time.perf_counter() - t) * 1e3
                self.rec.add(page, ms, ok, f"GET {url[:100]} -> {r.status_code} {r.text[:200] if not ok else ''}",
                             "GET " + re.sub(r"^/event/[^/?]+", "/event/<id>", url.split("?")[0]))
                return data if json_body else (r.text if ok and not stream else ok)
        except Exception as e:  # noqa: BLE001 - a connection error is an error of the run
            self.rec.add(page, (time.perf_counter() - t) * 1e3, False, f"GET {url}: {e!r}",
                         "GET " + url.split("?")[0])
            return None

    def _post_callback(self, cb: Callback, body: dict, page: str):
        t = time.perf_counter()
        try:
            with self.http.post(self.base + CALLBACK, json=body, timeout=REQUEST_TIMEOUT,
                                allow_redirects=False) as r:
                ok, data = False, None
                if r.status_code == 204:
                    ok = True
                elif r.status_code == 200:
                    try:
                        data = r.json()
                        ok = isinstance(data, dict) and "response" in data
                    except ValueError:
                        ok = False
                ms = (time.perf_counter() - t) * 1e3
                what = f"{cb.output[:100]} <- {sorted(body['changedPropIds'])[:2]} -> {r.status_code} "
                self.rec.add(page, ms, ok, what + ("" if ok else r.text[:300]), cb.label)
                return data if ok else None
        except Exception as e:  # noqa: BLE001
            self.rec.add(page, (time.perf_counter() - t) * 1e3, False, f"{cb.output[:120]}: {e!r}", cb.label)
            return None

    # -- component tree -----------------------------------------------------------------
    def _walk(self, node, owner: tuple[str, str] | None, added: list[str]) -> None:
        if isinstance(node, list):
            for n in node:
                self._walk(n, owner, added)
        elif isinstance(node, dict) and "props" in node and "type" in node:
            props = node["props"] or {}
            node["props"] = props
            key = None
            if props.get("id") is not None:
                key = sid(props["id"])
                self.comps[key] = node
                self.ids[key] = props["id"]
                added.append(key)
                if owner is not None:
                    self.owned.setdefault(owner, set()).add(key)
            for prop, v in props.items():
                if isinstance(v, (list, dict)):
                    self._walk(v, (key, prop) if key else owner, added)

    def _drop(self, owner: tuple[str, str]) -> None:
        for key in self.owned.pop(owner, ()):
            node = self.comps.pop(key, None)
            self.ids.pop(key, None)
            if node is not None:
                for prop in list(node["props"]):
                    self._drop((key, prop))

    def _set(self, key: str, prop: str, value, added: list[str]) -> None:
        node = self.comps.get(key)
        if node is None:
            return
        if isinstance(value, dict) and "__dash_patch_update" in value:  # a dash.Patch: edit in place
            value = apply_patch(node["props"].get(prop), value.get("operations") or [])
        self._drop((key, prop))
        node["props"][prop] = value
        if isinstance(value, (list, dict)):
            self._walk(value, (key, prop), added)

    def _value(self, key: str, prop: str):
        return self.comps[key]["props"].get(prop)

    # -- resolving callbacks --------------------------------------------------------------
    def _resolve(self, pattern, binding):
        """Concrete sids for ``pattern``: a list for ALL/ALLSMALLER, else one sid or None."""
        if isinstance(pattern, dict):
            if any(_is_wild(v) and v != ["MATCH"] for v in pattern.values()):
                return [k for k, cid in self.ids.items() if _matches(pattern, cid, binding)]
            cid = {k: (binding[k] if v == ["MATCH"] else v) for k, v in pattern.items()}
            key = sid(cid)
        else:
            key = pattern
        return key if key in self.comps else None

    def _instances(self, cb: Callback):
        """(binding, outputs, inputs, state) for each place ``cb`` applies now."""
        if cb.match_ref is not None:
            keys = [k for k in sorted(self.ids) if _matches(cb.match_ref, self.ids[k])]
            bindings, seen = [], set()
            for k in keys:
                b = {kk: self.ids[k][kk] for kk, vv in cb.match_ref.items() if vv == ["MATCH"]}
                if sid(b) not in seen:
                    seen.add(sid(b))
                    bindings.append(b)
        else:
            bindings = [{}]
        for b in bindings:
            groups = []
            for specs in (cb.outputs, cb.inputs, cb.state):
                res = [(self._resolve(p, b), prop) for p, prop in specs]
                if any(r is None for r, _ in res):
                    break
                groups.append(res)
            else:
                yield (cb.index, sid(b)), *groups

    @staticmethod
    def _keys(resolved) -> set[tuple[str, str]]:
        out = set()
        for r, prop in resolved:
            for k in (r if isinstance(r, list) else [r]):
                out.add((k, prop.split("@")[0]))
        return out

    def _initial(self, added: set[str], pending: dict) -> None:
        """Callbacks that new components fire (outputs or inputs among them)."""
        if not added:
            return
        for cb in self.callbacks:
            if cb.clientside or cb.prevent_initial:
                continue
            for inst in self._instances(cb):
                key, outs, ins, st = inst
                if any(k in added for k, _ in self._keys(outs) | self._keys(ins)):
                    pending.setdefault(key, [inst, set()])

    def _changed(self, changed: set[tuple[str, str]], pending: dict, source=None) -> None:
        """Callbacks with one of the ``changed`` (sid, prop) as an input."""
        if not changed:
            return
        props = {p for _, p in changed}
        for cb in self.callbacks:
            if cb.clientside or not (cb.input_props & props):
                continue
            for inst in self._instances(cb):
                if inst[0] == source:
                    continue
                hit = self._keys(inst[2]) & changed
                if hit:
                    entry = pending.setdefault(inst[0], [inst, set()])
                    entry[1] |= hit

    def _mount_locations(self, added: list[str], changed: set) -> None:
        """A ``dcc.Location`` that mounts reports the browser's URL."""
        for k in added:
            node = self.comps.get(k)
            if node is not None and node.get("type") == "Location":
                self._report_url(k, changed)

    def _report_url(self, k: str, changed: set) -> None:
        props = self.comps[k]["props"]
        new = {"pathname": self.path, "search": self.search, "hash": "",
               "href": f"{self.base}{self.path}{self.search}"}
        for p, v in new.items():
            if props.get(p) != v:
                props[p] = v
                changed.add((k, p))

    def _body(self, cb: Callback, outs, ins, st, changed) -> dict:
        def one(k, prop, with_value=True):
            d = {"id": self.ids[k], "property": prop}
            if with_value:
                v = self.comps[k]["props"].get(prop.split("@")[0])
                if v is not None or prop in self.comps[k]["props"]:
                    d["value"] = v
            return d

        def group(resolved, with_value=True):
            return [[one(k, p, with_value) for k in r] if isinstance(r, list) else one(r, p, with_value)
                    for r, p in resolved]

        outputs = group(outs, with_value=False)
        return {"output": cb.output, "outputs": outputs if cb.multi else outputs[0],
                "inputs": group(ins), "state": group(st),
                "changedPropIds": sorted(f"{k}.{p}" for k, p in changed)}

    def run(self, pending: dict) -> None:
        """Fire ``pending`` callbacks and whatever they fire, in the renderer's order."""
        sent = 0
        while pending and sent < MAX_CALLBACKS_PER_ACTION and not self.stopping.is_set():
            outs_of = {key: self._keys(entry[0][1]) for key, entry in pending.items()}
            ready = []
            for key, (inst, _) in pending.items():
                ins = self._keys(inst[2])
                if not any(ins & o for other, o in outs_of.items() if other != key):
                    ready.append(key)
            ready = ready or list(pending)
            batch = [pending.pop(k) for k in ready][: MAX_CALLBACKS_PER_ACTION - sent]
            sent += len(batch)
            page = self.page
            jobs = []
            for inst, changed in batch:
                cb = self.callbacks[inst[0][0]]
                # values are read when the request is sent (what a finished callback wrote)
                jobs.append((inst, self.pool.submit(self._post_callback, cb, self._body(cb, *inst[1:], changed), page)))
            for inst, job in jobs:
                data = job.result()
                if not data:
                    continue
                self._apply(data, inst[0], pending)

    def _apply(self, data: dict, source, pending: dict) -> None:
        added: list[str] = []
        changed: set = set()
        updates = list((data.get("response") or {}).items())
        side = data.get("sideUpdate") or {}
        updates += list(side.items()) if isinstance(side, dict) else []
        for key, props in updates:
            if not isinstance(props, dict):
                continue
            for prop, value in props.items():
                if key in self.comps:
                    self._set(key, prop, value, added)
                    changed.add((key, prop))
        self._remember_events(changed)
        self._mount_locations(added, changed)
        self._initial(set(added), pending)
        self._changed(changed, pending, source)

    def _remember_events(self, changed: set) -> None:
        """Event ids of the map's table when an answer set its rows or brought the table
        (the map's layout holds its first page)."""
        if "map-table" not in self.comps or not changed & {("map-table", "data"), ("_pages_content", "children")}:
            return
        table = self._value("map-table", "data")
        if isinstance(table, list) and len(Browser.event_ids) < 500:
            for row in table[:20]:
                eid = row.get("event_id") if isinstance(row, dict) else None
                if eid and eid not in Browser.event_ids:
                    Browser.event_ids.append(str(eid))

    # -- what a user does ---------------------------------------------------------------
    @staticmethod
    def page_name(path: str) -> str:
        p = path.strip("/").split("/")[0]
        return p or "map"

    def full_load(self, path: str, search: str = "") -> None:
        """Typing the URL / following a plain link: HTML, layout, dependencies, then the
        renderer's first callbacks."""
        self.path, self.search, self.page = path, search, self.page_name(path)
        self.shown_at = time.monotonic()
        if self._get(path + search, self.page) is None:
            return
        layout = self._get("/_dash-layout", self.page, json_body=True)
        deps = self._get("/_dash-dependencies", self.page, json_body=True)
        if layout is None or deps is None:
            return
        self.callbacks = [Callback(i, d) for i, d in enumerate(deps)]
        self.comps, self.ids, self.owned = {}, {}, {}
        added: list[str] = []
        self._walk(layout, None, added)
        self.pages = [cid["path"] for cid in self.ids.values()
                      if isinstance(cid, dict) and cid.get("type") == "fm-navlink" and "path" in cid]
        pending: dict = {}
        changed: set = set()
        self._mount_locations(added, changed)
        self._initial(set(added), pending)
        self._changed(changed, pending)
        self.run(pending)

    def navigate(self, path: str) -> None:
        """A navbar link: the URL changes (filters kept), every Location reports it."""
        query = self._filters_query()
        self.path, self.search, self.page = path, (f"?{query}" if query else ""), self.page_name(path)
        self.shown_at = time.monotonic()
        changed: set = set()
        for k, node in list(self.comps.items()):
            if node.get("type") == "Location":
                self._report_url(k, changed)
        pending: dict = {}
        self._changed(changed, pending)
        self.run(pending)

    def tick_intervals(self) -> None:
        """An enabled ``dcc.Interval`` that a server callback listens to has ticked while
        the user looked at the page (e.g. the event page's review sync): its callback
        fires once for the ticks due since the last action."""
        inputs = {(p, prop) for cb in self.callbacks if not cb.clientside for p, prop in cb.inputs
                  if isinstance(p, str)}
        elapsed_ms = (time.monotonic() - self.shown_at) * 1e3
        for k, node in list(self.comps.items()):
            props = node["props"]
            if node.get("type") != "Interval" or props.get("disabled") or (k, "n_intervals") not in inputs:
                continue
            due = int(elapsed_ms // max(float(props.get("interval") or 1000), 100.0))
            if due > (props.get("n_intervals") or 0):
                self._user_sets(k, "n_intervals", due)

    def _bar(self, name: str) -> str | None:
        for k, cid in self.ids.items():
            if isinstance(cid, dict) and cid.get("type") == f"fm-{name}":
                return k
        return None

    def _filters_query(self) -> str:
        k = self._bar("filters")
        return (self._value(k, "data") or "") if k else ""

    def _user_sets(self, key: str, prop: str, value) -> None:
        """The user changes a control: its callbacks fire."""
        added: list[str] = []
        self._set(key, prop, value, added)
        pending: dict = {}
        self._changed({(key, prop)}, pending)
        self.run(pending)

    @staticmethod
    def _option_values(options) -> list:
        out = []
        for o in options or []:
            out.append(o.get("value") if isinstance(o, dict) else o)
        return [v for v in out if v is not None]

    def _subset(self, values: list) -> list:
        if not values or self.rng.random() < 0.3:
            return []  # cleared
        return sorted(self.rng.sample(values, self.rng.randint(1, min(2, len(values)))))

    def _span(self) -> tuple[datetime, datetime] | None:
        days = []
        for name in ("time_start", "time_end"):
            k = self._bar(name)
            m = re.search(r"\d{4}-\d{2}-\d{2}", str(self._value(k, "placeholder") or "")) if k else None
            if m:
                days.append(datetime.strptime(m.group(0), "%Y-%m-%d"))
        return (days[0], days[1]) if len(days) == 2 and days[1] >= days[0] else None

    def change_filter(self) -> bool:
        """One change in the page's filter bar; False when the page has none."""
        choices = [n for n in ("cluster", "group", "quality", "source", "time", "time", "mag", "mag", "color",
                               "view") if self._bar("time_start" if n == "time" else n)]
        if not choices:
            return False
        what = self.rng.choice(choices)
        if what == "time":
            span = self._span()
            k0, k1 = self._bar("time_start"), self._bar("time_end")
            if span is None or self.rng.random() < 0.2:
                self._user_sets(k0, "value", "")
                self._user_sets(k1, "value", "")
                return True
            total = max((span[1] - span[0]).days, 1)
            a = span[0] + timedelta(days=self.rng.randint(0, total), hours=self.rng.choice([0, 0, 6, 12]))
            b = a + timedelta(days=self.rng.randint(1, max(1, total // 2)))
            fmt = (lambda t: t.strftime("%Y-%m-%d %H:%M")) if a.hour else (lambda t: t.strftime("%Y-%m-%d"))
            self._user_sets(k0, "value", fmt(a))      # typed one field, then the other
            self._user_sets(k1, "value", fmt(b))
        elif what == "mag":
            k = self._bar("mag")
            lo, hi = self._value(k, "min"), self._value(k, "max")
            if lo is None or hi is None:
                return False
            if self.rng.random() < 0.2:
                self._user_sets(k, "value", [lo, hi])
            else:
                a = round(self.rng.uniform(lo, lo + 0.6 * (hi - lo)), 1)
                b = round(self.rng.uniform(a + 0.1, hi), 1) if self.rng.random() < 0.5 else hi
                self._user_sets(k, "value", [a, min(b, hi)])
        elif what in ("color", "view"):
            k = self._bar(what)
            vals = self._option_values(self._value(k, "options"))
            if not vals:
                return False
            self._user_sets(k, "value", self.rng.choice(vals))
        else:
            k = self._bar(what)
            self._user_sets(k, "value", self._subset(self._option_values(self._value(k, "options"))))
        return True

    def change_page_control(self) -> bool:
        """A page's own choice (dropdown, radio items, checklist, select) that a server
        callback listens to; False when the page has none."""
        inputs = self._server_inputs()
        cands = [k for k, node in self.comps.items()
                 if (k, "value") in inputs and node["props"].get("options") and not k.startswith("{")]
        if not cands:
            return False
        k = self.rng.choice(sorted(cands))
        node = self.comps[k]
        vals = self._option_values(node["props"]["options"])
        multi = node.get("type") == "Checklist" or bool(node["props"].get("multi"))
        self._user_sets(k, "value", self._subset(vals) if multi else self.rng.choice(vals))
        return True

    def _server_inputs(self) -> set[tuple[str, str]]:
        return {(p, prop) for cb in self.callbacks if not cb.clientside for p, prop in cb.inputs if isinstance(p, str)}

    def _relays(self) -> dict[str, str]:
        """Graph id -> Store id for clientside callbacks ``Input(graph, "relayoutData")`` ->
        ``Output(store, "data")``: ASSUMED to pass a zoom through (the map's and the wells
        timeline's do; other relayout events they drop)."""
        out = {}
        for cb in self.callbacks:
            if (cb.clientside and len(cb.inputs) == 1 and len(cb.outputs) == 1 and cb.inputs[0][1] == "relayoutData"
                    and cb.outputs[0][1] == "data" and isinstance(cb.inputs[0][0], str)
                    and isinstance(cb.outputs[0][0], str)):
                out[cb.inputs[0][0]] = cb.outputs[0][0]
        return out

    @staticmethod
    def _axis_range(fig: dict, axis: str):
        """(lo, hi) of a figure axis: its layout range, else the first axis' data extent
        (numbers, ISO date strings, or Plotly's base64 typed arrays)."""
        lay = fig.get("layout") or {}
        r = (lay.get(axis) or {}).get("range") if isinstance(lay.get(axis), dict) else None
        if isinstance(r, list) and len(r) == 2 and None not in r:
            return r[0], r[1]
        key, vals = axis[0], []
        for t in fig.get("data") or []:
            if not isinstance(t, dict) or t.get(f"{key}axis", key) != key:
                continue
            v = t.get(key)
            if isinstance(v, dict) and "bdata" in v:
                import base64

                import numpy as np
                try:
                    a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v.get("dtype", "f8")))
                    a = a[np.isfinite(a)] if a.dtype.kind == "f" else a
                    vals += [float(a.min()), float(a.max())] if a.size else []
                except (ValueError, TypeError):
                    pass
            elif isinstance(v, list):
                vals += [x for x in v if isinstance(x, (int, float, str)) and not isinstance(x, bool)]
        kinds = {type(x) is str for x in vals}
        if not vals or len(kinds) > 1:
            return None
        return min(vals), max(vals)

    def _zoomed(self, lo, hi):
        """A random sub-range (20-70 % of the span) of ``lo``..``hi`` as Plotly reports it."""
        frac = self.rng.uniform(0.2, 0.7)
        start = self.rng.uniform(0, 1 - frac)
        if isinstance(lo, str):
            a, b = (datetime.fromisoformat(v.replace(" ", "T").rstrip("Z")) for v in (lo, hi))
            span = (b - a).total_seconds()
            fmt = lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]  # noqa: E731
            return (fmt(a + timedelta(seconds=start * span)), fmt(a + timedelta(seconds=(start + frac) * span)))
        return lo + start * (hi - lo), lo + (start + frac) * (hi - lo)

    def zoom(self) -> bool:
        """A zoom (20 %: a double-click autoscale) on a graph whose ``relayoutData`` a server
        callback reads, directly or through a relaying clientside callback; False when the
        page has none."""
        inputs, relays = self._server_inputs(), self._relays()
        cands = [k for k, node in self.comps.items() if node.get("type") == "Graph" and not k.startswith("{")
                 and ((k, "relayoutData") in inputs or (relays.get(k), "data") in inputs)]
        if not cands:
            return False
        k = self.rng.choice(sorted(cands))
        fig = self._value(k, "figure") or {}
        if self.rng.random() < 0.2:
            relayout = {"xaxis.autorange": True, "yaxis.autorange": True}
        else:
            relayout = {}
            for axis in ("xaxis", "yaxis"):
                r = self._axis_range(fig, axis)
                # time graphs zoom along time only; a 2-D map zooms a box
                if r is not None and (axis == "xaxis" or not isinstance(r[0], str)):
                    lo, hi = self._zoomed(*r)
                    relayout[f"{axis}.range[0]"], relayout[f"{axis}.range[1]"] = lo, hi
            if "xaxis.range[0]" not in relayout:
                return False
        if (k, "relayoutData") in inputs:
            self._user_sets(k, "relayoutData", relayout)
        else:  # the clientside relay writes its store, which the server callback reads
            self.comps[k]["props"]["relayoutData"] = relayout
            self._user_sets(relays[k], "data", relayout)
        return True

    def select_row(self) -> bool:
        """A click on a row of a table whose ``active_cell`` a server callback reads (the
        map's mechanisms table selects that event); False when the page has none."""
        inputs = self._server_inputs()
        cands = [k for k, node in self.comps.items() if node.get("type") == "DataTable"
                 and (k, "active_cell") in inputs and node["props"].get("data")]
        if not cands:
            return False
        k = self.rng.choice(sorted(cands))
        props = self.comps[k]["props"]
        i = self.rng.randrange(len(props["data"]))
        row = props["data"][i]
        cols = props.get("columns") or [{"id": next(iter(row), "")}]
        cell = {"row": i, "column": 0, "column_id": cols[0].get("id")}
        if isinstance(row, dict) and "id" in row:
            cell["row_id"] = row["id"]
        self._user_sets(k, "active_cell", cell)
        return True

    def download(self) -> None:
        """A page's own CSV link to a ``/download/`` route (the classification page's), the
        bar's CSV link (a plain GET, streamed), or a page's export button (a callback whose
        output is a ``dcc.Download``)."""
        k = self._bar("download")
        links = sorted(c for c, node in self.comps.items() if c != k and node.get("type") == "A"
                       and "/download/" in str(node["props"].get("href") or ""))
        if links and self.rng.random() < 0.5:
            self._get(self._value(self.rng.choice(links), "href"), "download", stream=True)
            return
        buttons = []
        for cb in self.callbacks:
            if cb.clientside:
                continue
            if not any(self.comps.get(o if isinstance(o, str) else "", {}).get("type") == "Download"
                       for o, _ in cb.outputs):
                continue
            buttons += [p for p, prop in cb.inputs if prop == "n_clicks" and isinstance(p, str) and p in self.comps]
        if buttons and (k is None or self.rng.random() < 0.5):
            b = self.rng.choice(sorted(set(buttons)))
            self._user_sets(b, "n_clicks", (self._value(b, "n_clicks") or 0) + 1)
            return
        href = (self._value(k, "href") if k else None) or "/download/events.csv"
        self._get(href, "download", stream=True)


class User:
    """One simulated user: logs in if asked, tours every page, then random actions, waiting
    ``wait`` (uniform min-max seconds) between actions, until ``stop`` is set."""

    def __init__(self, n: int, n_users: int, base: str, rec: Recorder, rng: random.Random,
                 wait: tuple[float, float], stop: threading.Event, login: tuple[str, str] | None = None):
        self.rng, self.rec, self.wait, self.stop = rng, rec, wait, stop
        self.session = requests.Session()
        self.base, self.login = base.rstrip("/"), login
        # a browser sends its page's origin with every POST; the app refuses POSTs without it
        # when accounts are on (components/login.py: same-origin check instead of form tokens)
        self.session.headers["Origin"] = self.base
        self.browser = Browser(self.session, base, rec, rng)
        self.browser.stopping = stop
        # first a tour of every page (each user starting at another page), then at random
        self.tour = tour(n, n_users)

    def run(self) -> None:
        try:
            if self.login:
                self._log_in(*self.login)
            self.browser.full_load(self.tour.pop(0))
            while not self.stop.wait(self.rng.uniform(*self.wait)):
                self.act()
        except Exception as e:  # noqa: BLE001 - a bug here must not pass silently as "fewer requests"
            if self.rec.recording:
                self.rec.add(self.browser.page, 0.0, False, f"user crashed: {e!r}")
        finally:
            self.browser.pool.shutdown(wait=False, cancel_futures=True)
            self.session.close()

    def _log_in(self, user: str, password: str) -> None:
        """The app's login form (components/login.py): ``POST /login`` with ``username``,
        ``password`` and the form's hidden ``csrf`` token; the session cookie is kept by the
        client. Every POST carries ``Origin`` (the app refuses cross-origin writes)."""
        t = time.perf_counter()
        form = {"username": user, "password": password}
        try:
            r = self.session.get(self.base + "/login", timeout=REQUEST_TIMEOUT)
            m = re.search(r'name="csrf"[^>]*value="([^"]*)"', r.text or "")
            if m:
                form["csrf"] = m.group(1)
            r = self.session.post(self.base + "/login", data=form, allow_redirects=True, timeout=REQUEST_TIMEOUT)
            ok, what = r.status_code < 400 and bool(self.session.cookies), f"POST /login -> {r.status_code}"
        except requests.RequestException as e:
            ok, what = False, f"POST /login: {e!r}"
        self.rec.add("login", (time.perf_counter() - t) * 1e3, ok, what)

    def act(self) -> None:
        b = self.browser
        if not b.callbacks:  # the first load failed: try again
            b.full_load("/")
            return
        b.tick_intervals()
        if self.tour:
            path = self.tour.pop(0)
            if path == "/event/":
                action = "event"
            elif b.page == "event":
                b.full_load(path, b.search)
                return
            else:
                b.navigate(path)
                return
        else:
            action = self.rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        if action == "event" and Browser.event_ids:
            eid = self.rng.choice(Browser.event_ids)
            q = b._filters_query()
            b.full_load(f"/event/{eid}", f"?{q}" if q else "")
        elif action == "reload":  # the address bar holds the bar's filters
            q = b._filters_query()
            b.full_load(b.path, f"?{q}" if q else "")
        elif action == "download":
            b.download()
        elif action == "filter" and b.change_filter():
            pass
        elif action == "page_control" and b.change_page_control():
            pass
        elif action == "zoom" and b.zoom():
            pass
        elif action == "select" and b.select_row():
            pass
        else:  # navigate (also when the page had no filter bar / controls)
            if b.page == "event" or not b.pages:
                b.full_load(self.rng.choice(b.pages or ["/"]), b.search)
            else:
                b.navigate(self.rng.choice([p for p in b.pages if p != b.path] or b.pages))


# -- the app under test ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``app.py`` (waitress) on a free port for ``data_dir``; its log in a temp file."""

    def __init__(self, data_dir: Path, threads: int | None = None, extra_args: list[str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="fm-load-app-", suffix=".log", delete=False)
        cmd = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(self.port)]
        if threads:
            cmd += ["--threads", str(threads)]
        self.proc = subprocess.Popen(cmd + (extra_args or []), cwd=ROOT,
                                     env={**os.environ, "FM_DATA_DIR": str(data_dir)},
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 120) -> None:
        import urllib.request

        end = time.time() + timeout
        while time.time() < end:
            try:
                # /healthz: open with or without accounts, answered once the app serves
                urllib.request.urlopen(self.url + "/healthz", timeout=5).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.3)
        tail = Path(self.log.name).read_text(errors="replace")[-2000:]
        self.close()
        raise SystemExit(f"app.py did not start ({self.url}):\n{tail}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


# -- run ------------------------------------------------------------------------------------
def run_load(url: str, users: int, seconds: float, spawn_rate: float, login=None, seed: int | None = None,
             trace: bool = False, wait: tuple[float, float] = (1.0, 3.0), grace: float = 60.0) -> dict:
    """Run ``users`` users for ``seconds`` (started ``spawn_rate`` per second) against ``url``;
    what ``summary`` returns, plus ``seconds`` and ``error_samples``."""
    rec = Recorder()
    rec.trace = trace
    cpu0 = time.process_time()
    master = random.Random(seed)
    Browser.event_ids = []
    stop = threading.Event()
    threads = []
    t0 = time.monotonic()
    for n in range(users):
        u = User(n, users, url, rec, random.Random(master.random()), wait, stop, login)
        th = threading.Thread(target=u.run, name=f"user-{n}", daemon=True)
        th.start()
        threads.append(th)
        if n + 1 < users and stop.wait(1.0 / spawn_rate if spawn_rate > 0 else 0):
            break
    stop.wait(max(0.0, seconds - (time.monotonic() - t0)))
    # no new actions or callbacks; the requests in flight finish and count (dropping them
    # would drop exactly the slowest ones), up to ``grace`` seconds
    stop.set()
    end = time.monotonic() + grace
    for th in threads:
        th.join(timeout=max(0.0, end - time.monotonic()))
    unfinished = sum(th.is_alive() for th in threads)
    rec.recording = False
    out = summary(rec, users)
    out["unfinished"] = unfinished
    out["seconds"] = seconds
    by_name: dict[str, list[float]] = {}
    for row in rec.rows:
        by_name.setdefault(row[3], []).append(row[1])
    out["slowest"] = sorted(((n, len(v), percentile(v, 50), percentile(v, 95)) for n, v in by_name.items()),
                            key=lambda r: -r[3])[:8]
    out["client_cpu_s"] = time.process_time() - cpu0
    out["grace"] = grace
    out["error_samples"] = rec.samples
    return out


def print_report(res: dict) -> None:
    print(f"{'page':<16}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}")
    for page, s in res["per_page"].items():
        fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
        print(f"{page:<16}{s['requests']:>9}{s['errors']:>8}{fmt(s['p50_ms']):>9}{fmt(s['p95_ms']):>9}")
    if res.get("slowest"):
        print(f"\nslowest requests (by p95): {'':<34}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}")
        for name, n, p50, p95 in res["slowest"]:
            print(f"  {name[:58]:<58}{n:>6}{p50:>9.0f}{p95:>9.0f}")
    if res.get("unfinished"):
        print(f"{res['unfinished']} user(s) still waiting for a response {res['grace']:g} s after the end: "
              "those requests are not counted")
    if res.get("client_cpu_s") is not None:
        print(f"load generator CPU: {res['client_cpu_s']:.1f} s over {res['seconds']:g} s "
              f"(same machine as the app unless --url)")
    for s in res.get("error_samples", []):
        print(f"  error: {s}", file=sys.stderr)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, help="tables folder to serve (the app is started here)")
    p.add_argument("--url", help="an app already running (then --data-dir is not used)")
    p.add_argument("--users", type=int, default=20, help="simulated users")
    p.add_argument("--seconds", type=float, default=60, help="duration of the run")
    p.add_argument("--spawn-rate", type=float, default=2.0, help="users started per second")
    p.add_argument("--threads", type=int, default=None, help="waitress threads of the started app "
                   "(default: app.py's)")
    p.add_argument("--app-args", default="", help="more arguments for the started app.py, e.g. "
                   "'--threads 8' or (accounts) '--users FILE'")
    p.add_argument("--user", help="log in as this user first (assumed form POST /login)")
    p.add_argument("--password-file", type=Path, help="file whose first line is --user's password")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--grace", type=float, default=60.0, help="seconds the requests in flight at the end may "
                   "take to finish and still count (default 60)")
    p.add_argument("--trace", action="store_true", help="print every request (stderr)")
    p.add_argument("--wait", default="1,3", help="MIN,MAX seconds a user waits between actions (default 1,3; "
                   "shorter only for smoke tests)")
    args = p.parse_args(argv)
    if not args.url and not args.data_dir:
        p.error("give --data-dir DIR (the app is started) or --url URL")
    login = None
    if args.user:
        if not args.password_file:
            p.error("--user needs --password-file")
        login = (args.user, args.password_file.read_text().splitlines()[0])

    server = None
    if not args.url:
        server = AppServer(args.data_dir, args.threads, shlex.split(args.app_args))
        server.wait()
    url = args.url or server.url
    try:
        print(f"load: {args.users} users for {args.seconds:g} s against {url}"
              f"{f' (data {args.data_dir})' if server else ''}", file=sys.stderr, flush=True)
        wait = tuple(float(v) for v in args.wait.split(","))
        res = run_load(url, args.users, args.seconds, args.spawn_rate, login, args.seed, args.trace, wait,
                       args.grace)
    finally:
        if server is not None:
            server.close()
    print_report(res)
    print(f"{res['users']} users, {res['seconds']:g} s; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
          f" ({os.cpu_count()} CPUs, shared with the load generator)")
    print(json.dumps({k: res[k] for k in ("users", "requests", "errors", "p50_ms", "p95_ms", "per_page")}),
          flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # user threads still waiting on a slow response are daemons: do not wait for them
    os._exit(code)
