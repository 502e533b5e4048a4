"""The dashboard's filters: one dataclass, its URL query string and its SQL WHERE clause.

A :class:`Filters` value is what every page filters on. It round-trips through the URL
query string (so a reload or a shared link restores the view) and turns into SQL
predicates with ``?`` placeholders.

Security contract
-----------------
* Parsing (:meth:`Filters.from_query`) never raises: unknown keys are ignored, malformed
  values are dropped, out-of-range numbers and times are clamped, NaN/inf are dropped,
  lists are de-duplicated and capped (:data:`MAX_LIST` items of at most
  :data:`MAX_STR` printable characters).
* Dropping is never silent where it matters: :func:`query_problems` lists every malformed
  filter value of a query (a dropped value would otherwise mean "no filter", and a CSV
  download the whole table). The filter bar shows them in an alert and disables its
  download link; the CSV route answers 400 with them; :meth:`Filters.from_query_strict`
  raises :class:`FilterQueryError`. Clamping (a magnitude of 99, a year 9999) is not a
  problem: the value is a valid number or date, only outside the range. A well-formed list
  value that the data lack (``cluster=bogus``) is applied and matches nothing; the bar says
  so (:func:`unknown_values`).
* SQL (:func:`where_clause`) never contains a user value: every value is a bound
  parameter, and column names come from the fixed whitelist :data:`COLUMNS`.

URL keys
--------
``cluster``, ``group``, ``quality``, ``source`` (repeatable, one value each),
``start``, ``end`` (UTC, ``YYYY-MM-DD`` or ``YYYY-MM-DDThh:mm[:ss[.ffffff]]``, optional
``Z``/``+00:00``), ``mmin``, ``mmax`` (ML), ``table`` (CSV export: ``events`` or
``mechanisms``), ``color`` (events coloured by ``time``, ``group``, ``depth``,
``magnitude``), ``view`` (``km`` local east/north frame or ``geo`` longitude/latitude),
``mech`` (the mechanism population, one of :data:`POPULATIONS`; default ``A``).
Defaults are omitted from the canonical query string.

Semantics
---------
All predicates are ANDed; an empty list means "no filter". Times are inclusive at both
ends; a start after the end is applied swapped, whole days kept (:func:`swapped_window`),
and the filter bar flags it. ``group`` and ``quality`` apply to an event through its mechanism (see
:mod:`components.data`); the value :data:`NONE` matches a null (an event without a
mechanism, a mechanism without a quality, an event outside any cluster). ``source`` picks
which mechanisms count (``published``, ``computed``).

Mechanism population (``mech``)
-------------------------------
Which mechanism rows every analysis counts, chosen **before** the row filters above (see
:func:`population_sql`), in two steps:

1. candidates: the mechanisms of the population's sources (and of the ``source`` filter)
   whose quality is in the population's classes;
2. except for ``all``, **one mechanism per event**: the event's preferred candidate —
   source order (published before computed), then quality (A before B ... before none),
   then source name (the table's key is ``(event_id, source)``, so the choice is unique).

So the default reads "the event's published quality-A mechanism, else its computed
quality-A mechanism": a computed mechanism stands in for an event without a published one
of the class (none at all, or only a lower-quality one), and an event is never counted
twice. The ``group``/``quality``/time/... filters then apply to the chosen rows.

* ``A`` (default): quality A, published first, else computed. On ToC2ME this is the paper's
  population (the 2,519 quality-A mechanisms: g1 462, g2 1,648, g3 130, g4 205, other 74;
  the 600 SWe quality-B events are left out, and the build's computed mechanisms belong to
  events with a published quality-A one); on the demo it also shows the computed quality-A
  mechanisms of events whose published one is of lower quality.
* ``AB``: the same with quality A or B (the paper's SWe A+B set: 913 events).
* ``any``: any quality, published first (a published mechanism of any quality beats a
  computed one), best quality first within a source.
* ``published`` / ``computed``: that source only, one per event, any quality.
* ``all``: every mechanism row; an event with several mechanisms counts several times
  (computed-vs-published comparisons; the event page always shows all of an event's).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode

#: label that stands for SQL NULL in list filters (no cluster / no mechanism / no quality)
NONE = "none"

TABLES = ("events", "mechanisms")
COLOR_BY = ("time", "group", "depth", "magnitude")
VIEWS = ("km", "geo")
QUALITIES = ("A", "B", "C", "D", NONE)


@dataclass(frozen=True)
class Population:
    """One mechanism population (see the module docstring). ``sources``: allowed sources in
    preference order (empty = any source, ranked published, computed, then by name);
    ``qualities``: allowed quality classes (empty = any, nulls included); ``per_event``:
    keep one mechanism per event; ``label``: the words the filter bar and the captions use."""

    key: str
    label: str
    sources: tuple[str, ...] = ()
    qualities: tuple[str, ...] = ()
    per_event: bool = True


#: the populations, in the order the filter bar lists them; the first is the default
POPULATIONS: dict[str, Population] = {p.key: p for p in (
    Population("A", "one per event: quality A, published first, else computed", (), ("A",)),
    Population("AB", "one per event: quality A or B, published first, else computed", (), ("A", "B")),
    Population("any", "one per event: any quality, published first, else computed", ()),
    Population("published", "one per event: published only (best quality first)", ("published",)),
    Population("computed", "one per event: computed only (best quality first)", ("computed",)),
    Population("all", "all mechanism rows (an event with several mechanisms counts several times)",
               per_event=False),
)}
DEFAULT_POPULATION = "A"
#: ranks of sources when a population does not order them itself
SOURCE_ORDER = ("published", "computed")

#: magnitudes are clamped into this range
MAG_LIMITS = (-10.0, 10.0)
#: times are clamped into this range (UTC)
TIME_LIMITS = (datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc))
MAX_LIST = 64
MAX_STR = 64
_MAX_QUERY = 8192  # characters of query string considered at all

#: whitelist: filter field -> SQL column expression (the only identifiers ever emitted)
COLUMNS = {
    "time": '"time"',
    "magnitude": '"magnitude"',
    "cluster": '"cluster"',
    "group": '"group"',
    "quality": '"quality"',
    "source": '"source"',
}

_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(?:Z|[+-]00:?00)?$"
)
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def parse_time(value, end: bool = False) -> datetime | None:
    """A UTC datetime from ``value`` (string, datetime or pandas Timestamp), or None.

    Accepts ``YYYY-MM-DD`` and ``YYYY-MM-DD[T ]hh:mm[:ss[.ffffff]]`` with an optional
    ``Z``/``+00:00``; anything else (other offsets included), and a day that is not in the
    calendar (``2016-13-45``, ``9999-99-99``), gives None. Out-of-range years of valid dates
    are clamped to :data:`TIME_LIMITS`. With ``end=True`` a date without a time
    means the end of that day (last microsecond), so an end date is inclusive.
    """
    if value is None:
        return None
    if isinstance(value, datetime):  # includes pandas.Timestamp
        if value != value:  # NaT
            return None
        t = _utc(value)
        t = datetime(t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond, tzinfo=timezone.utc)
    else:
        if not isinstance(value, str) or len(value) > 40:
            return None
        m = _TIME_RE.match(value.strip())
        if not m:
            return None
        y, mo, d, hh, mm, ss, frac = m.groups()
        year = int(y)
        # the calendar check comes first: 9999-99-99 is not a date, so it is invalid (None),
        # not clamped (a leap year stands in for years outside the limits: Feb 29 passes)
        try:
            t = datetime(year if TIME_LIMITS[0].year <= year < TIME_LIMITS[1].year else 2000, int(mo), int(d),
                         int(hh or 0), int(mm or 0), int(ss or 0), int((frac or "0").ljust(6, "0")),
                         tzinfo=timezone.utc)
        except ValueError:  # month 13, Feb 30, hour 25 ...
            return None
        if year < TIME_LIMITS[0].year:
            return TIME_LIMITS[0]
        if year >= TIME_LIMITS[1].year:
            return TIME_LIMITS[1]
        if end and hh is None:
            t = end_of_day(t)
    return min(max(t, TIME_LIMITS[0]), TIME_LIMITS[1])


def format_time(t: datetime | None, end: bool = False) -> str:
    """Canonical text of a UTC time: ``YYYY-MM-DDThh:mm`` (seconds, microseconds if set);
    just ``YYYY-MM-DD`` for midnight (or, with ``end=True``, the day's last microsecond),
    the inverse of :func:`parse_time`."""
    if t is None:
        return ""
    t = _utc(t)
    if not end and (t.hour, t.minute, t.second, t.microsecond) == (0, 0, 0, 0):
        return t.strftime("%Y-%m-%d")
    if end and (t.hour, t.minute, t.second, t.microsecond) == (23, 59, 59, 999999):
        return t.strftime("%Y-%m-%d")
    if t.microsecond:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if t.second:
        return t.strftime("%Y-%m-%dT%H:%M:%S")
    return t.strftime("%Y-%m-%dT%H:%M")


def parse_magnitude(value) -> float | None:
    """A finite float clamped to :data:`MAG_LIMITS`, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        s = value.strip()
        if len(s) > 32 or not _NUM_RE.match(s):
            return None
        x = float(s)
    else:
        return None
    if not math.isfinite(x):
        return None
    return round(min(max(x, MAG_LIMITS[0]), MAG_LIMITS[1]), 6)


def _clean_str(value) -> str | None:
    if not isinstance(value, str):
        return None
    s = value.strip()
    if not s or len(s) > MAX_STR or not s.isprintable():
        return None
    return s


def _clean_list(values, allowed: Iterable[str] | None = None, upper: bool = False) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    allowed_set = set(allowed) if allowed is not None else None
    out: list[str] = []
    for v in values:
        s = _clean_str(v)
        if s is None:
            continue
        if upper and s.lower() != NONE:
            s = s.upper()
        if upper and s.lower() == NONE:
            s = NONE
        if allowed_set is not None and s not in allowed_set:
            continue
        if s not in out:
            out.append(s)
        if len(out) >= MAX_LIST:
            break
    return tuple(sorted(out))


def _choice(value, choices: tuple[str, ...], default: str) -> str:
    if isinstance(value, (list, tuple)):
        value = next((v for v in value if v in choices), None)
    return value if value in choices else default


def _first(values, parse):
    """First value of ``values`` (a scalar or a list) that ``parse`` accepts."""
    if not isinstance(values, (list, tuple)):
        values = [values]
    for v in values:
        x = parse(v)
        if x is not None:
            return x
    return None


class FilterQueryError(ValueError):
    """A query string with malformed filter values; ``problems`` lists them (one sentence each)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("malformed filter: " + "; ".join(self.problems))


#: URL keys that hold one value each, with the parser that must accept it
_SINGLE_KEYS = {
    "start": ("a date", lambda v: parse_time(v)),
    "end": ("a date", lambda v: parse_time(v, end=True)),
    "mmin": ("a number", parse_magnitude),
    "mmax": ("a number", parse_magnitude),
    "table": (f"one of {', '.join(TABLES)}", lambda v: v if v in TABLES else None),
    "color": (f"one of {', '.join(COLOR_BY)}", lambda v: v if v in COLOR_BY else None),
    "view": (f"one of {', '.join(VIEWS)}", lambda v: v if v in VIEWS else None),
    "mech": (f"one of {', '.join(POPULATIONS)}", lambda v: v if v in POPULATIONS else None),
}
_LIST_KEYS = ("cluster", "group", "quality", "source")


def query_problems(query) -> list[str]:
    """Every malformed filter value of ``query`` (query string or mapping, as
    :meth:`Filters.from_query` takes), one sentence each; ``[]`` when the query is clean.

    Malformed: a ``start``/``end`` that is not a date (:func:`parse_time`), an
    ``mmin``/``mmax`` that is not a finite number, a ``table``/``color``/``view``/``quality``
    outside its choices, a single-valued key given twice, a list value that is not 1 to
    :data:`MAX_STR` printable characters, more than :data:`MAX_LIST` values of a list key,
    or a query longer than 8192 characters (the rest would be ignored). Keys that are not
    filter keys (a page's own keys) and blank values (``start=``) are not problems. Never
    raises."""
    problems: list[str] = []
    if isinstance(query, str) and len(query) > _MAX_QUERY:
        problems.append(f"the query string is longer than {_MAX_QUERY} characters")
    try:
        params = _as_params(query)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return problems + [f"the query string cannot be read ({exc})"]
    for key, (what, parse) in _SINGLE_KEYS.items():
        values = params.get(key) or []
        if len(values) > 1:
            problems.append(f"{key} is given {len(values)} times (one value only)")
        for v in values:
            if parse(v) is None:
                problems.append(f"{key}={_show(v)} is not {what}")
    for key in _LIST_KEYS:
        values = params.get(key) or []
        if len(values) > MAX_LIST:
            problems.append(f"{key} has {len(values)} values (at most {MAX_LIST})")
        for v in values[:MAX_LIST + 1]:
            s = _clean_str(v)
            if s is None:
                problems.append(f"{key}={_show(v)} is not 1 to {MAX_STR} printable characters")
            elif key == "quality" and (s.lower() if s.lower() == NONE else s.upper()) not in QUALITIES:
                problems.append(f"quality={_show(v)} is not one of {', '.join(QUALITIES)}")
    return problems


#: list filters checked by :func:`unknown_values`: (URL key, :class:`Filters` field, key of
#: :meth:`components.data.DataProvider.filter_options`)
_KNOWN_VALUE_KEYS = (("cluster", "clusters", "clusters"), ("group", "groups", "groups"),
                     ("quality", "qualities", "qualities"), ("source", "sources", "sources"))


def unknown_values(f: "Filters", options: dict) -> list[str]:
    """Selected list values that the data do not have, one sentence per key; ``[]`` when
    every value occurs. ``options`` is :meth:`components.data.DataProvider.filter_options`.

    Such a value is well formed (not a :func:`query_problems` problem) and is applied, but
    matches nothing: ``cluster=bogus`` alone selects no event, next to ``cluster=NSw`` it
    adds none. Before, the bar kept it selected without a word and the pages showed 0.
    A key whose known values ``options`` lacks is not checked. Never raises."""
    out = []
    for key, field, opt in _KNOWN_VALUE_KEYS:
        known = options.get(opt) if isinstance(options, dict) else None
        if known is None:
            continue
        missing = [v for v in getattr(f, field) if v not in known]
        if missing:
            names = ", ".join(_show(v) for v in missing)
            listed = ", ".join(str(v) for v in known[:12]) + (", …" if len(known) > 12 else "")
            out.append(f"{key} {names} is not in these data (they have: {listed or 'none'}), so it matches nothing")
    return out


def _show(value) -> str:
    """A value quoted for a message: printable, at most 40 characters."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


@dataclass(frozen=True)
class Filters:
    """The view state shared by all pages. Immutable; build with :meth:`from_query`
    (URL), :meth:`from_values` (controls) or directly (values are cleaned the same way),
    change with :meth:`replace`.

    ``time_start``/``time_end`` are timezone-aware UTC datetimes (inclusive) or None;
    ``mag_min``/``mag_max`` are ML or None (None = unbounded, which also keeps rows with
    a null magnitude); the list fields are sorted tuples of distinct strings (empty = no
    filter).
    """

    clusters: tuple[str, ...] = ()
    time_start: datetime | None = None
    time_end: datetime | None = None
    mag_min: float | None = None
    mag_max: float | None = None
    groups: tuple[str, ...] = ()
    qualities: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    table: str = "events"
    color_by: str = "time"
    view: str = "km"
    population: str = DEFAULT_POPULATION

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_query(cls, query: str | Mapping | None) -> "Filters":
        """Parse a URL query string (with or without ``?``) or a mapping (values: a string
        or a list of strings, as ``parse_qs`` or Dash's page kwargs give). Never raises."""
        try:
            params = _as_params(query)
        except Exception:  # noqa: BLE001 - hostile input must never raise
            params = {}
        return cls.from_values(
            clusters=params.get("cluster"),
            time_start=_first(params.get("start"), parse_time),
            time_end=_first(params.get("end"), lambda v: parse_time(v, end=True)),
            mag_min=_first(params.get("mmin"), parse_magnitude),
            mag_max=_first(params.get("mmax"), parse_magnitude),
            groups=params.get("group"),
            qualities=params.get("quality"),
            sources=params.get("source"),
            table=params.get("table"),
            color_by=params.get("color"),
            view=params.get("view"),
            population=params.get("mech"),
        )

    @classmethod
    def from_query_strict(cls, query: str | Mapping | None) -> "Filters":
        """As :meth:`from_query`, but a query with malformed filter values
        (:func:`query_problems`) raises :class:`FilterQueryError` instead of being read as
        fewer filters (for downloads: a dropped filter would return the whole table)."""
        problems = query_problems(query)
        if problems:
            raise FilterQueryError(problems)
        return cls.from_query(query)

    @classmethod
    def from_values(cls, clusters=None, time_start=None, time_end=None, mag_min=None, mag_max=None,
                    groups=None, qualities=None, sources=None, table=None, color_by=None,
                    view=None, population=None) -> "Filters":
        """Build from control values of any type; cleans, clamps and drops like
        :meth:`from_query`. Never raises."""
        return cls(clusters=clusters, time_start=time_start, time_end=time_end, mag_min=mag_min,
                   mag_max=mag_max, groups=groups, qualities=qualities, sources=sources, table=table,
                   color_by=color_by, view=view, population=population)

    def __post_init__(self):
        # direct construction (``Filters(groups=["g1"], time_end="2016-11-05")``) is
        # normalised like :meth:`from_values`, so every instance is canonical
        t0, t1 = parse_time(self.time_start), parse_time(self.time_end, end=True)
        if t0 is not None and t1 is not None and t0 > t1:
            t0, t1 = swapped_window(self.time_start, self.time_end)
        m0, m1 = parse_magnitude(self.mag_min), parse_magnitude(self.mag_max)
        if m0 is not None and m1 is not None and m0 > m1:
            m0, m1 = m1, m0
        values = dict(
            clusters=_clean_list(self.clusters), time_start=t0, time_end=t1, mag_min=m0, mag_max=m1,
            groups=_clean_list(self.groups), qualities=_clean_list(self.qualities, QUALITIES, upper=True),
            sources=_clean_list(self.sources), table=_choice(self.table, TABLES, "events"),
            color_by=_choice(self.color_by, COLOR_BY, "time"), view=_choice(self.view, VIEWS, "km"),
            population=_choice(self.population, tuple(POPULATIONS), DEFAULT_POPULATION))
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def replace(self, **changes) -> "Filters":
        """A copy with ``changes`` applied, re-validated."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Filters.from_values(**values)

    # -- URL ------------------------------------------------------------------------------
    def to_params(self) -> list[tuple[str, str]]:
        """Canonical (key, value) pairs; defaults omitted."""
        out: list[tuple[str, str]] = []
        out += [("cluster", v) for v in self.clusters]
        if self.time_start is not None:
            out.append(("start", format_time(self.time_start)))
        if self.time_end is not None:
            out.append(("end", format_time(self.time_end, end=True)))
        if self.mag_min is not None:
            out.append(("mmin", format(self.mag_min, "g")))
        if self.mag_max is not None:
            out.append(("mmax", format(self.mag_max, "g")))
        out += [("group", v) for v in self.groups]
        out += [("quality", v) for v in self.qualities]
        out += [("source", v) for v in self.sources]
        if self.population != DEFAULT_POPULATION:
            out.append(("mech", self.population))
        if self.table != "events":
            out.append(("table", self.table))
        if self.color_by != "time":
            out.append(("color", self.color_by))
        if self.view != "km":
            out.append(("view", self.view))
        return out

    def to_query(self) -> str:
        """Canonical query string without the leading ``?`` ('' for the defaults)."""
        return urlencode(self.to_params())

    def to_search(self) -> str:
        """``?query`` for ``dcc.Location.search`` ('' for the defaults)."""
        q = self.to_query()
        return f"?{q}" if q else ""

    def data_query(self) -> str:
        """Query string of the row filters only (no table/colour/view; the population
        ``mech`` is kept: it selects rows): the cache key of a set of filtered rows."""
        return urlencode([(k, v) for k, v in self.to_params() if k not in ("table", "color", "view")])

    # -- SQL ------------------------------------------------------------------------------
    def where(self, table: str) -> tuple[str, list]:
        """Shortcut for :func:`where_clause`."""
        return where_clause(self, table)


def _as_params(query) -> dict[str, list]:
    if query is None:
        return {}
    if isinstance(query, Mapping):
        out = {}
        for k, v in query.items():
            if not isinstance(k, str):
                continue
            if isinstance(v, (list, tuple)):
                out[k] = [x for x in v if isinstance(x, str)][:MAX_LIST * 4]
            elif isinstance(v, str):
                out[k] = [v]
        return out
    if not isinstance(query, str):
        return {}
    q = query[:_MAX_QUERY]
    if q.startswith("?"):
        q = q[1:]
    return parse_qs(q, keep_blank_values=False, max_num_fields=MAX_LIST * 16)


def _in_list(column: str, values: tuple[str, ...]) -> tuple[str, list]:
    """``COALESCE(col, 'none') IN (?, ...)``: the literal ``'none'`` is ours, not input."""
    placeholders = ", ".join("?" for _ in values)
    return f"COALESCE({column}, '{NONE}') IN ({placeholders})", list(values)


def where_clause(f: Filters, table: str, *, alias: str = "") -> tuple[str, list]:
    """The WHERE predicates of ``f`` for ``table`` (``events`` or ``mechanisms``) as
    ``(sql, params)``: ``sql`` is ``'TRUE'`` or ANDed predicates with ``?`` placeholders
    only, to be bound with ``params`` in order.

    The ``events`` relation must expose ``time, magnitude, cluster, group, quality`` (group
    and quality from the event's mechanism); ``mechanisms`` additionally ``source``. For
    ``table='mechanism_source'`` only the source predicate is returned (used where the
    events relation picks each event's mechanism). ``alias`` prefixes the columns
    (``'m.'``); it is ours, never user input.
    """
    if table not in ("events", "mechanisms", "mechanism_source"):
        raise ValueError(f"unknown table {table!r}")
    if alias and not re.fullmatch(r"[a-z_]+\.", alias):
        raise ValueError("bad alias")
    col = {k: alias + v for k, v in COLUMNS.items()}
    preds: list[str] = []
    params: list = []

    def add(sql: str, vals: list):
        preds.append(sql)
        params.extend(vals)

    if table in ("mechanisms", "mechanism_source") and f.sources:
        add(*_in_list(col["source"], f.sources))
    if table == "mechanism_source":
        return (" AND ".join(preds) if preds else "TRUE"), params
    if f.time_start is not None:
        add(f"{col['time']} >= ?", [f.time_start])
    if f.time_end is not None:
        add(f"{col['time']} <= ?", [f.time_end])
    if f.mag_min is not None:
        add(f"{col['magnitude']} >= ?", [f.mag_min])
    if f.mag_max is not None:
        add(f"{col['magnitude']} <= ?", [f.mag_max])
    if f.clusters:
        add(*_in_list(col["cluster"], f.clusters))
    if f.groups:
        add(*_in_list(col["group"], f.groups))
    if f.qualities:
        add(*_in_list(col["quality"], f.qualities))
    return (" AND ".join(preds) if preds else "TRUE"), params


def time_order_reversed(start, end) -> bool:
    """True when both ``start`` and ``end`` parse and the start is after the end (the
    filter bar flags this; :class:`Filters` then applies the two swapped, see
    :func:`swapped_window`)."""
    t0, t1 = parse_time(start), parse_time(end, end=True)
    return t0 is not None and t1 is not None and t0 > t1


def swapped_window(start, end) -> tuple[datetime, datetime]:
    """The window of a reversed start/end pair, swapped without losing boundary days: each
    value is read again in its new role, so ``start=2016-11-30&end=2016-10-01`` gives
    2016-10-01 00:00 -> 2016-11-30 23:59:59.999999 (both days whole), not 10-01 23:59:59.999
    -> 11-30 00:00. A datetime (already parsed) at the end of a day becomes that day's start,
    one at midnight that day's end, as a date would be read."""
    def read(value, as_end: bool) -> datetime:
        t = parse_time(value, end=as_end)
        if isinstance(value, str):
            return t
        if as_end and (t.hour, t.minute, t.second, t.microsecond) == (0, 0, 0, 0):
            return min(end_of_day(t), TIME_LIMITS[1])
        if not as_end and (t.hour, t.minute, t.second, t.microsecond) == (23, 59, 59, 999999):
            return datetime(t.year, t.month, t.day, tzinfo=timezone.utc)
        return t

    return read(end, False), read(start, True)


def end_of_day(t: datetime) -> datetime:
    """Last microsecond of ``t``'s UTC day (for date-only end inputs)."""
    t = _utc(t)
    return datetime(t.year, t.month, t.day, tzinfo=timezone.utc) + timedelta(days=1, microseconds=-1)


def population_of(f: Filters) -> Population:
    """The :class:`Population` of ``f``."""
    return POPULATIONS[f.population]


def population_sql(f: Filters) -> tuple[str, list, str, bool]:
    """How ``f``'s population picks mechanism rows, as SQL over a relation with the
    ``mechanisms`` columns: ``(where, params, order, per_event)``.

    ``where`` (with ``params``) keeps the candidate rows: the population's sources and
    quality classes, and ``f.sources`` (the bar's Source filter). ``order`` is the
    preference of an ``ORDER BY`` inside ``PARTITION BY event_id`` (the first row wins):
    the population's source order (default :data:`SOURCE_ORDER`, other sources after them),
    quality A..D then null, source name. ``per_event`` is False for ``all`` (every
    candidate row is kept). Values are bound parameters; source names in ``order`` are
    constants of :data:`POPULATIONS`/:data:`SOURCE_ORDER` (checked)."""
    pop = population_of(f)
    preds, params = [], []
    if pop.sources:
        preds.append(f"source IN ({', '.join('?' for _ in pop.sources)})")
        params += list(pop.sources)
    if pop.qualities:
        preds.append(f"quality IN ({', '.join('?' for _ in pop.qualities)})")
        params += list(pop.qualities)
    if f.sources:
        sql, vals = _in_list(COLUMNS["source"], f.sources)
        preds.append(sql)
        params += vals
    ranked = pop.sources or SOURCE_ORDER
    if not all(re.fullmatch(r"[a-z_]+", s) for s in ranked):
        raise ValueError("bad source name in a population")
    src_rank = "CASE source " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(ranked)) + \
               f" ELSE {len(ranked)} END"
    order = f"{src_rank}, COALESCE(quality, 'Z'), source"
    return (" AND ".join(preds) if preds else "TRUE"), params, order, pop.per_event


def population_words(f: Filters, one_per_event: bool = False) -> str:
    """How the population picks, in a few words (``"quality A, published first, else computed"``).
    ``one_per_event``: the page keeps one mechanism per event whatever the population (the
    strike-time and diffusion pages), so ``all`` reads as each event's preferred one."""
    pop = population_of(f)
    if pop.per_event:
        return pop.label.split(": ", 1)[-1]
    if one_per_event:
        return "each event's preferred: any quality, published first, else computed"
    return pop.label


def population_caption(f: Filters, n_events: int | None = None, n_mechanisms: int | None = None, *,
                       one_per_event: bool = False) -> str:
    """The sentence a page shows under its figures: which mechanisms it counts, e.g.
    ``"Mechanisms: 2,519 events, one mechanism each (quality A, published first, else computed)"``;
    for ``all``: ``"Mechanisms: 3,123 mechanisms of 3,119 events: all mechanism rows ..."``
    (unless ``one_per_event``, see :func:`population_words`). The bar's Source filter is
    appended when set."""
    pop = population_of(f)
    extra = " · Source filter: " + ", ".join(f.sources) if f.sources else ""
    if pop.per_event or one_per_event:
        n = n_events if n_events is not None else n_mechanisms
        head = f"{n:,} events, one mechanism each" if n is not None else "One mechanism per event"
        return f"Mechanisms: {head} ({population_words(f, one_per_event)}){extra}"
    if n_mechanisms is not None and n_events is not None:
        head = f"{n_mechanisms:,} mechanisms of {n_events:,} events"
    elif n_mechanisms is not None:
        head = f"{n_mechanisms:,} mechanisms"
    else:
        head = "Mechanisms"
    return f"Mechanisms: {head}: {pop.label}{extra}"
