"""``python -m pipeline export``: a data folder's events, mechanisms, picks, stations and
waveforms in standard formats, selected with the dashboard's filters.

::

    python -m pipeline export --format quakeml|csv|skhash|stationxml|miniseed|project
                              --data-dir DIR --out PATH [--query "cluster=NSw&mmin=0"]
                              [--cluster C]... [--group G]... [--quality Q]... [--source S]...
                              [--mech POP] [--start T] [--end T] [--mmin M] [--mmax M]
                              [--event EVENT_ID]
                              [--table mechanisms|events] [--name NAME] [--force]

``--query`` takes the dashboard's URL query string (copy it from the address bar); the
other filter flags add to it (lists) or replace its value (``--start`` ...). The rows are
those the dashboard shows for that URL (:mod:`pipeline.export.selection`). Unlike the
dashboard, which drops a malformed URL value silently, the command refuses it.
"""
from __future__ import annotations

import argparse
from urllib.parse import parse_qs

from .run import CSV_TABLES, FORMATS

#: URL keys of components.filters (``table``, ``color``, ``view`` are accepted and ignored
#: except ``table``, the CSV choice)
QUERY_KEYS = ("cluster", "start", "end", "mmin", "mmax", "group", "quality", "source", "table", "color", "view",
              "mech")
_LIST_KEYS = ("cluster", "group", "quality", "source")


def _time(end: bool):
    def parse(value: str) -> str:
        from components.filters import parse_time
        if parse_time(value, end=end) is None:
            raise argparse.ArgumentTypeError(
                f"invalid time {value!r} (use YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.ffffff]], UTC)")
        return value
    return parse


def _magnitude(value: str) -> str:
    from components.filters import parse_magnitude
    if parse_magnitude(value) is None:
        raise argparse.ArgumentTypeError(f"invalid magnitude {value!r} (a number, e.g. -0.5)")
    return value


def _quality(value: str) -> str:
    from components.filters import NONE, QUALITIES
    v = value.strip()
    v = NONE if v.lower() == NONE else v.upper()
    if v not in QUALITIES:
        raise argparse.ArgumentTypeError(f"invalid quality {value!r} (one of {', '.join(QUALITIES)})")
    return v


def add_cli(subparsers) -> None:
    """Register ``export`` on the ``python -m pipeline`` sub-parsers."""
    p = subparsers.add_parser(
        "export", help="export events, mechanisms, picks, stations or waveforms (QuakeML, CSV, SKHASH, "
                       "StationXML, MiniSEED, a project folder), filtered like the dashboard",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("--data-dir", default="data", help="folder of the Parquet tables (default: data)")
    p.add_argument("--out", required=True, help="file (quakeml, csv, stationxml) or folder (skhash, miniseed, "
                                                "project) to write")
    add_filter_args(p)
    p.add_argument("--event", help="one event id (YYYYMMDDhhmmss.fff) with all its mechanisms; filters are ignored")
    p.add_argument("--table", choices=CSV_TABLES, help="csv only: mechanisms (default) or events")
    p.add_argument("--name", help="project only: the project's name (default: the folder name)")
    p.add_argument("--force", action="store_true", help="replace an existing --out (a project folder only if it "
                                                        "is an earlier project export)")
    p.set_defaults(func=_cmd, _parser=p)


def query_params(query: str, parser=None) -> dict[str, list[str]]:
    """The URL query string as ``{key: [values]}``; unknown keys and malformed values are
    errors (``parser.error``: one line, exit 2) instead of being dropped."""
    def fail(msg):
        if parser is not None:
            parser.error(msg)
        raise ValueError(msg)

    q = (query or "").strip()
    q = q.split("?", 1)[1] if "?" in q else q   # a whole URL pasted
    q = q.split("#", 1)[0]
    try:
        params = parse_qs(q, keep_blank_values=False, strict_parsing=bool(q))
    except ValueError:
        fail(f"argument --query: cannot parse {query!r} (expected key=value&key=value)")
    unknown = sorted(set(params) - set(QUERY_KEYS))
    if unknown:
        fail(f"argument --query: unknown key(s) {', '.join(unknown)} (known: {', '.join(QUERY_KEYS)})")
    checks = {"start": _time(False), "end": _time(True), "mmin": _magnitude, "mmax": _magnitude,
              "quality": _quality}
    for key, check in checks.items():
        for v in params.get(key, []):
            try:
                check(v)
            except argparse.ArgumentTypeError as exc:
                fail(f"argument --query: {key}: {exc}")
    if "table" in params and params["table"][-1] not in CSV_TABLES:
        fail(f"argument --query: table must be one of {', '.join(CSV_TABLES)}")
    return params


def add_filter_args(p, *, mech: bool = True) -> None:
    """The dashboard's filters as command-line flags (``--query`` and one flag per filter),
    shared by ``export``, ``stress`` and ``composite``; :func:`filters_from_args` reads them."""
    from components.filters import POPULATIONS  # stdlib-only module: cheap

    p.add_argument("--query", default="", help="the dashboard's URL query string, e.g. 'cluster=NSw&start=2016-11-01'")
    p.add_argument("--cluster", action="append", default=[], help="cluster name (repeatable; 'none' = no cluster)")
    p.add_argument("--group", action="append", default=[], help="mechanism group (repeatable; 'none' = none)")
    p.add_argument("--quality", action="append", default=[], type=_quality, help="SKHASH quality A-D or none "
                                                                                  "(repeatable)")
    p.add_argument("--source", action="append", default=[], help="mechanism source: published, computed (repeatable)")
    if mech:
        p.add_argument("--mech", choices=tuple(POPULATIONS), help="mechanism population, as the dashboard's "
                       "'Mechanisms' control (default A: one per event, published else computed, quality A; "
                       "all: every mechanism row, an event may count twice)")
    p.add_argument("--start", type=_time(False), help="first origin time, UTC (inclusive)")
    p.add_argument("--end", type=_time(True), help="last origin time, UTC (inclusive; a date = its whole day)")
    p.add_argument("--mmin", type=_magnitude, help="smallest magnitude ML")
    p.add_argument("--mmax", type=_magnitude, help="largest magnitude ML")


def filters_from_args(args, parser=None):
    """The :class:`components.filters.Filters` of ``--query`` and the filter flags."""
    from components.filters import Filters

    params = query_params(args.query, parser)
    for key in _LIST_KEYS:
        params[key] = params.get(key, []) + list(getattr(args, key) or [])
    for key in ("start", "end", "mmin", "mmax", "mech"):
        if getattr(args, key, None) is not None:
            params[key] = [getattr(args, key)]
    return Filters.from_query(params), params


def _cmd(args) -> int:
    from .run import export

    filters, params = filters_from_args(args, getattr(args, "_parser", None))
    table = args.table or (params["table"][-1] if params.get("table") else None)
    if args.format != "csv" and args.table:
        args._parser.error("argument --table: only for --format csv")
    res = export(args.data_dir, args.format, args.out, filters=filters, event_id=args.event, table=table,
                 force=args.force, name=args.name)
    print(res.summary)
    return 0
