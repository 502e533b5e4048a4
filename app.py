"""The dashboard: ``create_app(data_dir)``, a WSGI ``server``, and ``python app.py``.

* ``create_app(data_dir)`` builds a multipage Dash app (pages in ``pages/``) reading the
  Parquet tables of ``data_dir`` through :class:`components.data.DataProvider`.
* ``server`` (module attribute, created on first access) is the Flask app of
  ``create_app($FM_DATA_DIR or ./data)`` for WSGI servers: ``waitress-serve app:server``.
  It has accounts when ``$FM_USERS_FILE`` names a users file; without one it is read-only
  unless ``$FM_HOST`` is a loopback address (a WSGI server's address is not known here).
* ``python app.py [--data-dir DIR] [--host H] [--port P] [--users FILE] [--job-workers N]
  [--job-queue N] [--job-timeout S]`` serves on 127.0.0.1:8050 with waitress if installed,
  else Dash's development server. The ``--job-*`` flags (or ``FM_JOB_WORKERS``,
  ``FM_JOB_MAX_QUEUED``, ``FM_JOB_TIMEOUT_S``) size the re-inversion queue
  (:mod:`pipeline.review.jobs`).

Access (:mod:`components.access`, :mod:`components.login`): with ``--users FILE`` everyone
logs in and the account's role decides what it may do; without one, on a loopback address
it is the single-user local mode, and on any other address the app is read-only (no write
path at all) and says so on start. ``GET /healthz`` answers 200 in every mode.

The app never imports TensorFlow, ObsPy or SKHASH, opens no DuckDB connection at import
(one per process, lazily), and loads Bootstrap from ``assets/`` (no CDN).
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = "data"


def data_dir_from_env() -> Path:
    return Path(os.environ.get("FM_DATA_DIR") or DEFAULT_DATA_DIR)


def _register_download(app) -> None:
    """The CSV download routes (same SQL as the pages' tables and counts):

    * ``GET <prefix>download/<table>.csv?<filters query>``: the filtered rows of ``events``
      or ``mechanisms``.
    * ``GET <prefix>download/mechanisms_classified.csv?<filters query>&rule=<code>``: the
      classification page's CSV, the filtered mechanisms re-grouped with the page's rule
      (:mod:`components.classified_csv`).

    A malformed filter value (:func:`components.filters.query_problems`) or rule answers 400
    with the reasons, never "no filter" (that would send the whole table).

    The CSV is spooled batch by batch (bounded memory) into an anonymous temporary file
    and handed to the WSGI server's file wrapper: under waitress the worker thread is free
    as soon as the query has run, and the socket is fed from the file by waitress's I/O
    loop. A streamed body would hold a worker thread for the whole transfer to a slow
    client (waitress blocks the thread once its output buffer passes its high-water mark),
    so a few large downloads could starve every page. The response carries its
    Content-Length, so the browser shows the download's progress."""
    import tempfile

    from flask import Response, abort, request, send_file

    from components import classified_csv
    from components.data import get_provider
    from components.filters import TABLES, Filters, FilterQueryError

    prefix = app.config.routes_pathname_prefix

    def bad_request(what: str, problems) -> Response:
        return Response(f"malformed {what}, nothing downloaded:\n" + "".join(f"- {p}\n" for p in problems),
                        status=400, mimetype="text/plain")

    def filtered(table: str):
        """``(provider, the query's Filters on table)``, or the Response refusing them: 404
        without tables, 400 for a malformed filter (never "no filter": that would send the
        whole table)."""
        provider = get_provider()
        missing = provider.missing_tables(("events", "mechanisms"))
        if missing:
            return Response(f"missing tables: {', '.join(missing)} (run `python -m pipeline build`)\n",
                            status=404, mimetype="text/plain")
        try:
            return provider, Filters.from_query_strict(query_string()).replace(table=table)
        except FilterQueryError as exc:
            return bad_request("filter", exc.problems)

    def spooled_csv(chunks, name: str):
        """``chunks`` (bytes) spooled to an unlinked temporary file, sent as attachment ``name``;
        503 saying which setting to raise when the export's DuckDB pool cannot hold its sort
        (nothing was sent yet: the spool is complete before the response starts)."""
        import duckdb

        spool = tempfile.TemporaryFile(prefix="fm-download-")  # unlinked at once; gone when closed
        try:
            for chunk in chunks:
                spool.write(chunk)
            size = spool.tell()
            spool.seek(0)
        except duckdb.OutOfMemoryException as exc:
            spool.close()
            limit = get_provider().export_memory_limit
            app.logger.warning("CSV export %s ran out of its DuckDB memory (%s): %s", name, limit, exc)
            return Response(f"the export ran out of the memory it may use (FM_DUCKDB_EXPORT_MEMORY={limit}); "
                            "nothing downloaded. Ask the operator to raise FM_DUCKDB_EXPORT_MEMORY, narrow "
                            "the filters, or export from the command line (python -m pipeline export).\n",
                            status=503, mimetype="text/plain")
        except BaseException:
            spool.close()
            raise
        resp = send_file(spool, mimetype="text/csv", as_attachment=True, download_name=name,
                         conditional=False, etag=False, max_age=0)
        resp.content_length = size  # any WSGI server (waitress also finds it from the file)
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    def query_string() -> str:
        return request.query_string.decode("utf-8", "replace")

    @app.server.route(f"{prefix}download/<table>.csv", endpoint="fm_download_csv")
    def download_csv(table: str):
        if table not in TABLES:
            abort(404)
        got = filtered(table)
        if isinstance(got, Response):
            return got
        provider, f = got
        return spooled_csv(provider.iter_csv(table, f), f"{provider.file_prefix()}_{table}_filtered.csv")

    @app.server.route(f"{prefix}{classified_csv.ROUTE}", endpoint="fm_download_classified_csv")
    def download_classified_csv():
        got = filtered("mechanisms")
        if isinstance(got, Response):
            return got
        provider, f = got
        try:
            rule = classified_csv.rule_of_query(query_string())
        except ValueError as exc:
            return bad_request("group rule", [str(exc)])
        rows = provider.iter_csv("mechanisms", f, transform=lambda batch: classified_csv.regroup_batch(batch, rule))
        return spooled_csv(rows, classified_csv.filename(provider.file_prefix()))


#: Response encodings offered, best first (Chrome accepts both), and brotli's quality. The
#: callback JSON is mostly base64 float32 arrays (Plotly's typed arrays): quality 1 makes the
#: ToC2ME map figure 4.5 -> 2.4 MB in ~40 ms, quality 4 only 5 % smaller in ~5x the time.
COMPRESS_ALGORITHMS = ["br", "gzip"]
COMPRESS_BR_LEVEL = 1


class _BundleCache:
    """flask-compress cache holding only the compressed JavaScript/CSS bundles and assets,
    whose URLs carry Dash's version or file-time fingerprint (:func:`_bundle_key`): each is
    compressed once per process, not per page load.
    Everything else (callbacks, the layout) gets the key suffix "" and is never stored."""

    def __init__(self):
        self._store: dict[str, bytes] = {}

    def get(self, key: str):
        return self._store.get(key)

    def set(self, key: str, value: bytes) -> None:
        if not key.endswith(";"):
            self._store[key] = value


def _bundle_key(request) -> str:
    """The cache key of a compressed response: its URL for Dash's component bundles and for
    assets Dash links with their file's modification time (``?m=``, so an edited asset gets a
    new key; the 1.6 MB plotly.js bundle is one), else "" (never stored)."""
    if request.method != "GET":
        return ""
    if "/_dash-component-suites/" in request.path or ("/assets/" in request.path and request.args.get("m")):
        return request.full_path
    return ""


def _enable_compression(server) -> bool:
    """Compress JSON callback responses, the layout and the JavaScript/CSS bundles with
    flask-compress (``requirements.txt``); streamed responses (the CSV downloads) are left
    alone. Without the package the app still serves, uncompressed, and says so once.
    ``FM_COMPRESS=0`` turns it off (the browser benchmark's baseline)."""
    if os.environ.get("FM_COMPRESS", "1") == "0":
        return False
    try:
        from flask_compress import Compress
    except ImportError:
        import logging
        logging.getLogger(__name__).warning("flask-compress not installed: responses are not compressed "
                                            "(pip install -r requirements.txt)")
        return False
    server.config.setdefault("COMPRESS_ALGORITHM", COMPRESS_ALGORITHMS)
    server.config.setdefault("COMPRESS_BR_LEVEL", COMPRESS_BR_LEVEL)
    server.config.setdefault("COMPRESS_STREAMS", False)
    server.config.setdefault("COMPRESS_CACHE_BACKEND", _BundleCache)
    server.config.setdefault("COMPRESS_CACHE_KEY", _bundle_key)
    server.extensions["compress"] = Compress(server)
    return True


def _start_job_queue(data_dir: Path, settings, writable: bool) -> None:
    """Give the job queue (:mod:`pipeline.review.jobs`) its settings and, when the data folder
    already has a review database, open the queue now: jobs a previous run left queued start,
    and jobs it left running are marked failed ("app restarted while running"). Without a
    database there is nothing to recover and the queue opens with the first job."""
    from pipeline.review import jobs
    from pipeline.review.reviews import db_path

    jobs.configure(data_dir, settings)
    if writable and db_path(data_dir).is_file():
        try:
            jobs.get_queue(data_dir)
        except Exception as exc:  # noqa: BLE001 - a folder we cannot write: the page says why
            import logging
            logging.getLogger(__name__).warning("job queue not started: %s: %s", type(exc).__name__, exc)


#: plotly.js with only the trace types the pages draw (``make install`` builds it from
#: ``frontend/plotly`` with npm); Dash serves every ``assets/*.js`` and ``dcc.Graph`` then
#: uses that ``window.Plotly`` instead of fetching the full plotly.min.js.
PLOTLY_BUNDLE = ROOT / "assets" / "plotly-fm.min.js"


def _say_which_plotly() -> None:
    if not PLOTLY_BUNDLE.is_file():
        import logging
        logging.getLogger(__name__).warning(
            "%s not built (make install, needs npm): the pages load the full plotly.js "
            "(4.8 MB), about 1 s more per cold page load", PLOTLY_BUNDLE.relative_to(ROOT))


def _say_which_runtime(lean: bool) -> None:
    if not lean:
        import logging
        from components.lean_runtime import RUNTIME_FILE
        logging.getLogger(__name__).warning(
            "%s not built (make install, needs npm): the pages load Dash's @babel/polyfill "
            "(about 0.1 s more per cold page load)", RUNTIME_FILE.relative_to(ROOT))


def create_app(data_dir: str | os.PathLike | None = None, *, users_file: str | os.PathLike | None = None,
               read_only: bool = False, job_settings=None, **dash_kwargs):
    """The Dash app on the tables of ``data_dir`` (default ``$FM_DATA_DIR`` or ``./data``).

    The folder may be empty: pages then tell the user to build the data. ``users_file``:
    accounts and roles (``python -m pipeline users add``), login required for everything
    but ``/healthz``; else ``read_only`` (the default for a non-loopback address, see
    :func:`main`) turns every write path off; else the single-user local mode.
    ``job_settings``: :class:`pipeline.review.jobs.JobSettings` of the re-inversion queue
    (default: from ``FM_JOB_*`` environment variables). Extra keyword arguments go to
    :class:`dash.Dash` (e.g. ``url_base_pathname``).
    """
    import dash

    from components import access as access_mod
    from components import filter_bar, layout, login
    from components.data import DataProvider, set_provider

    data_dir = Path(data_dir) if data_dir is not None else data_dir_from_env()
    kwargs = dict(
        use_pages=True,
        pages_folder=str(ROOT / "pages"),
        assets_folder=str(ROOT / "assets"),
        external_stylesheets=[],  # Bootstrap is served from assets/ (no CDN)
        suppress_callback_exceptions=True,  # page layouts are dynamic (no-data message)
        title=layout.BRAND,
        update_title=None,
        serve_locally=True,
    )
    kwargs.update(dash_kwargs)
    app = dash.Dash(__name__, **kwargs)
    if "index_string" not in dash_kwargs:
        from components import eager_chunks, early_layout, lean_runtime
        # the layout is asked for while the scripts load (issue 12)
        app.index_string = early_layout.index_string(app.index_string, app.config.requests_pathname_prefix)
        # regenerator-runtime instead of Dash's @babel/polyfill (core-js 2 slowed plotly.js down)
        _say_which_runtime(lean_runtime.install(app))
        # the graph, dropdown, slider and table chunks with the page, not after its layout (issue 12)
        app.index_string = eager_chunks.index_string(
            app.index_string, app.config.requests_pathname_prefix,
            start_graphs=[p.get("path_template") or p["path"] for p in dash.page_registry.values()
                          if p.get("start_graphs")])
    _say_which_plotly()
    set_provider(DataProvider(data_dir), app.server)
    if users_file is not None:
        from pipeline.review.accounts import AccountsFile

        access = access_mod.Access(access_mod.ACCOUNTS, accounts=AccountsFile(users_file))
    elif read_only:
        access = access_mod.Access(access_mod.READ_ONLY, reason="shared address without a users file")
    else:
        access = access_mod.Access(access_mod.LOCAL)
    access_mod.set_access(app.server, access)
    from pipeline.review.jobs import JobSettings
    _start_job_queue(data_dir, job_settings or JobSettings.from_env(), access.writable)
    login.install(app, access)  # before any page or callback is served
    _enable_compression(app.server)
    app.layout = layout.shell
    layout.register_callbacks(app)
    filter_bar.register_callbacks(app)
    _register_download(app)
    return app


_app = None


def __getattr__(name: str):
    """``app`` and ``server`` are created on first access (not at import), so importing this
    module (e.g. for ``create_app`` in tests) builds nothing."""
    global _app
    if name in ("app", "server"):
        if _app is None:
            from components.access import READ_ONLY, mode_for

            users = os.environ.get("FM_USERS_FILE") or None
            _app = create_app(users_file=users, read_only=mode_for(os.environ.get("FM_HOST"), users) == READ_ONLY)
        return _app if name == "app" else _app.server
    raise AttributeError(name)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Serve the ToC2ME focal-mechanism dashboard.")
    p.add_argument("--data-dir", default=None, help="tables folder (default $FM_DATA_DIR or ./data)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("FM_PORT", 8050)))
    p.add_argument("--threads", type=int, default=4, help="waitress worker threads (callbacks and queries "
                   "run on these; downloads and static files are sent by waitress's I/O loop)")
    p.add_argument("--channel-timeout", type=int, default=120, metavar="S",
                   help="close a connection idle for S seconds (waitress; slow clients included)")
    p.add_argument("--connection-limit", type=int, default=100, metavar="N",
                   help="at most N open connections; later ones wait in the listen backlog")
    p.add_argument("--users", default=os.environ.get("FM_USERS_FILE") or None, metavar="FILE",
                   help="accounts file (python -m pipeline users add NAME --role viewer|reviewer|admin --file FILE): "
                        "everyone logs in; without it, a non-loopback --host serves read-only")
    p.add_argument("--job-workers", type=int, default=None, metavar="N",
                   help="re-inversions run at once per process (default $FM_JOB_WORKERS or 1)")
    p.add_argument("--job-queue", type=int, default=None, metavar="N",
                   help="re-inversions that may wait; more are refused (default $FM_JOB_MAX_QUEUED or 20)")
    p.add_argument("--job-timeout", type=float, default=None, metavar="S",
                   help="time limit of one re-inversion, s; SKHASH is killed there (default $FM_JOB_TIMEOUT_S or 300)")
    args = p.parse_args(argv)
    from components.access import ACCOUNTS, READ_ONLY, mode_for
    from pipeline.review.jobs import JobSettings

    try:
        job_settings = JobSettings.from_env(workers=args.job_workers, max_queued=args.job_queue,
                                            timeout_s=args.job_timeout)
    except ValueError as exc:
        p.exit(2, f"error: {exc}\n")

    mode = mode_for(args.host, args.users)
    if args.users and not Path(args.users).is_file():
        p.exit(2, f"error: users file {args.users} not found (create it with `python -m pipeline users add NAME "
                  f"--role admin --file {args.users}`)\n")
    dash_app = create_app(args.data_dir, users_file=args.users, read_only=mode == READ_ONLY, job_settings=job_settings)
    # the model page's figures are built once per process: build them (and run its first
    # per-event query) now rather than on the first visit (~0.6 s of Plotly figure
    # construction; issue 12). Not in create_app: tests make many apps and never need it.
    from pages import model as model_page

    try:
        model_page.warm_up(dash_app.server.extensions["fm_provider"])
    except Exception as exc:  # noqa: BLE001 - the page itself reports a broken table; serve anyway
        print(f"model page warm-up skipped: {type(exc).__name__}: {exc}")
    url = f"http://{args.host}:{args.port}/"
    if mode == READ_ONLY:
        print(f"READ-ONLY: serving on the non-loopback address {args.host} without --users FILE, so nobody can "
              "review, re-invert or undo (browsing and downloads work). Give --users FILE for accounts and roles.")
    elif mode == ACCOUNTS:
        n = len(dash_app.server.extensions["fm_access"].accounts.accounts())
        print(f"accounts: {n} in {args.users}; login required (GET /healthz is open)")
    try:
        import waitress
    except ImportError:
        print(f"waitress not installed; Dash development server on {url}")
        dash_app.run(host=args.host, port=args.port, debug=False)
        return 0
    print(f"serving {url} (waitress, data: {Path(args.data_dir or data_dir_from_env()).resolve()})")
    waitress.serve(dash_app.server, host=args.host, port=args.port, threads=args.threads,
                   channel_timeout=args.channel_timeout, connection_limit=args.connection_limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
