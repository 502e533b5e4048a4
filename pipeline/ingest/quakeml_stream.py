"""A streaming QuakeML 1.2 reader (lxml ``iterparse``) for the fields the files source uses.

:func:`read_events` returns light event records whose attribute names and values are those
of ObsPy's ``Catalog`` objects that :func:`pipeline.ingest.catalog_formats.read_quakeml`
walks (``resource_id``, ``preferred_origin()``, ``origins[].time.ns`` / ``latitude`` /
``longitude`` / ``depth`` (m) / ``arrivals[].pick_id|phase``, ``magnitudes[].mag`` /
``magnitude_type``, ``picks[]`` with ``time``, ``waveform_id``, ``phase_hint``,
``polarity``, ``method_id``, ``focal_mechanisms[]`` with ``nodal_planes``, ``comments``,
``station_polarity_count``, ``misfit``, ``station_distribution_ratio``, ``method_id``,
``triggering_origin_id``), so both paths share one walk and give the same tables.
Each event element is dropped from the tree once read: memory stays flat and a 20,000-event
catalogue reads in seconds instead of minutes (bench/bench_quakeml_read.py).

Values follow ObsPy's QuakeML reader exactly: the first child of a name counts, empty text
is ``None``, a number that does not parse is ``None``, ``polarity`` goes through ObsPy's
``PickPolarity`` enumeration (case-insensitive; unknown values ``None``), times are ObsPy
``UTCDateTime`` nanoseconds (the common ``YYYY-MM-DDThh:mm:ss[.ffffff][Z]`` form is computed
here, every other form by ``UTCDateTime`` itself). Elements of other namespaces are ignored,
as ObsPy ignores them for these fields.

**Anything it cannot map with certainty raises** :class:`NotMappable` **with the reason**;
the caller then reads that file through ObsPy (and logs why), so nothing is silently
dropped or read differently. That covers: a root other than QuakeML 1.2 or an
``eventParameters`` that is not its first and only one, a default namespace other than
BED 1.2 anywhere (ObsPy resolves child names against the default namespace), an event
outside ``eventParameters``, a missing or empty ``publicID`` on an event, origin, pick or
focal mechanism (ObsPy would invent a random id), a preferred origin/magnitude id that
names no single origin/magnitude of its event (ObsPy then searches every object in memory),
an event ``type`` outside QuakeML's list (ObsPy drops such an event with a warning), and a
nodal plane element with no strike, dip or rake value (ObsPy's truth value of such a plane
depends on its uncertainties).
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

BED = "http://quakeml.org/xmlns/bed/1.2"
ROOT_TAG = "{http://quakeml.org/xmlns/quakeml/1.2}quakeml"


def _t(name: str) -> str:
    return "{%s}%s" % (BED, name)


_EP, _EVENT, _ORIGIN, _MAG, _PICK, _FM, _ARRIVAL = (
    _t(n) for n in ("eventParameters", "event", "origin", "magnitude", "pick", "focalMechanism", "arrival"))
_VALUE, _TEXT, _PUBLIC_ID = _t("value"), _t("text"), "publicID"
_TIME_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z?")
_EPOCH = datetime(1970, 1, 1)


class NotMappable(Exception):
    """The file uses a structure this reader cannot map with certainty (see module docstring)."""


# --------------------------------------------------------------------------- values

def _text(el, tag: str):
    """Text of the first ``tag`` child, ``None`` when absent or empty (as ObsPy)."""
    c = el.find(tag)
    if c is None:
        return None
    return c.text or None


def _conv(text, conv):
    if text is None:
        return None
    try:
        return conv(text)
    except (ValueError, TypeError, OverflowError):
        return None


def _value(el, tag: str, conv=float):
    """``<tag><value>`` converted (ObsPy's ``_value``): ``None`` when absent or unparseable."""
    c = el.find(tag)
    return None if c is None else _conv(_text(c, _VALUE), conv)


class _Time:
    """An origin/pick time as ObsPy gives it: ``ns`` = integer ns since 1970 (UTC)."""
    __slots__ = ("ns",)

    def __init__(self, ns: int):
        self.ns = ns


def parse_time(text):
    """QuakeML time text -> :class:`_Time` with ObsPy ``UTCDateTime(text).ns``, or ``None``."""
    if text is None:
        return None
    m = _TIME_RE.fullmatch(text)
    if m:
        y, mo, d, h, mi, s, frac = m.groups()
        try:
            td = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s)) - _EPOCH
        except ValueError:
            pass  # e.g. second 60: UTCDateTime's own rules below
        else:
            us = int(frac.ljust(6, "0")) if frac else 0
            return _Time(((td.days * 86400 + td.seconds) * 1_000_000 + us) * 1000)
    from obspy import UTCDateTime
    try:
        return _Time(UTCDateTime(text).ns)
    except Exception:  # noqa: BLE001 - ObsPy's reader turns any failure into None
        return None


def _time(el, tag: str):
    c = el.find(tag)
    return None if c is None else parse_time(_text(c, _VALUE))


def _public_id(el, what: str) -> str:
    rid = el.get(_PUBLIC_ID)
    if not rid:
        raise NotMappable(f"a {what} without publicID (line {el.sourceline})")
    return rid


_POLARITY_ENUM = None


def _polarity(text):
    global _POLARITY_ENUM
    if text is None:
        return None
    if _POLARITY_ENUM is None:
        from obspy.core.event.header import PickPolarity
        _POLARITY_ENUM = PickPolarity
    return _POLARITY_ENUM(text)


def _check_event_type(text, line) -> None:
    """ObsPy drops an event whose ``type`` is not a QuakeML event type (after turning
    ``null`` into ``not reported`` and ``_`` into blanks): not this reader's call."""
    if text is None:
        return
    from obspy.core.event.header import EventType
    value = "not reported" if text == "null" else text.replace("_", " ")
    if EventType(value) is None:
        raise NotMappable(f"event type {text!r} outside QuakeML's list (line {line})")


# --------------------------------------------------------------------------- records

class _Rec:
    """Attribute bag with the ObsPy attribute names the reader uses."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class NodalPlane(_Rec):
    def __bool__(self):  # ObsPy: true when any attribute is set (0 counts)
        return self.strike is not None or self.dip is not None or self.rake is not None


class Event(_Rec):
    def preferred_origin(self):
        return self._preferred

    def preferred_magnitude(self):
        return self._preferred_mag


def _referred(items: list, rid, what: str, line):
    """The one item of ``items`` whose resource_id is ``rid`` (``None`` when ``rid`` is)."""
    if rid is None:
        return None
    hits = [x for x in items if x.resource_id == rid]
    if len(hits) != 1:
        raise NotMappable(f"preferred {what} id {rid!r} names {len(hits)} {what}s of its event (line {line})")
    return hits[0]


def _origin(el) -> _Rec:
    arrivals = [_Rec(pick_id=_text(a, _t("pickID")) or "", phase=_text(a, _t("phase")) or "")
                for a in el.iterchildren(_ARRIVAL)]
    return _Rec(resource_id=_public_id(el, "origin"), time=_time(el, _t("time")),
                latitude=_value(el, _t("latitude")), longitude=_value(el, _t("longitude")),
                depth=_value(el, _t("depth")), arrivals=arrivals)


def _pick(el) -> _Rec:
    w = el.find(_t("waveformID"))
    wid = None if w is None else _Rec(network_code=w.get("networkCode") or "",
                                      station_code=w.get("stationCode") or "",
                                      location_code=w.get("locationCode"), channel_code=w.get("channelCode"))
    return _Rec(resource_id=_public_id(el, "pick"), time=_time(el, _t("time")), waveform_id=wid,
                phase_hint=_text(el, _t("phaseHint")), polarity=_polarity(_text(el, _t("polarity"))),
                method_id=_text(el, _t("methodID")))


def _nodal_plane(el, tag):
    c = el.find(tag)
    if c is None:
        return None
    plane = NodalPlane(strike=_value(c, _t("strike")), dip=_value(c, _t("dip")), rake=_value(c, _t("rake")))
    if not plane:
        raise NotMappable(f"a {tag.split('}')[1]} without strike, dip or rake value (line {c.sourceline})")
    return plane


def _focal_mechanism(el) -> _Rec:
    np_el = el.find(_t("nodalPlanes"))
    planes = None
    if np_el is not None:
        try:
            pref = int(np_el.get("preferredPlane"))
        except (TypeError, ValueError):
            pref = None
        planes = _Rec(nodal_plane_1=_nodal_plane(np_el, _t("nodalPlane1")),
                      nodal_plane_2=_nodal_plane(np_el, _t("nodalPlane2")), preferred_plane=pref)
    return _Rec(resource_id=_public_id(el, "focal mechanism"), nodal_planes=planes,
                method_id=_text(el, _t("methodID")), triggering_origin_id=_text(el, _t("triggeringOriginID")),
                station_polarity_count=_conv(_text(el, _t("stationPolarityCount")), int),
                misfit=_conv(_text(el, _t("misfit")), float),
                station_distribution_ratio=_conv(_text(el, _t("stationDistributionRatio")), float),
                comments=[_Rec(text=_text(c, _TEXT)) for c in el.iterchildren(_t("comment"))])


def _event(el) -> Event:
    line = el.sourceline
    _check_event_type(_text(el, _t("type")), line)
    origins = [_origin(o) for o in el.iterchildren(_ORIGIN)]
    mags = [_Rec(resource_id=m.get(_PUBLIC_ID), mag=_value(m, _t("mag")), magnitude_type=_text(m, _t("type")))
            for m in el.iterchildren(_MAG)]
    return Event(resource_id=_public_id(el, "event"), origins=origins, magnitudes=mags,
                 picks=[_pick(p) for p in el.iterchildren(_PICK)],
                 focal_mechanisms=[_focal_mechanism(f) for f in el.iterchildren(_FM)],
                 _preferred=_referred(origins, _text(el, _t("preferredOriginID")), "origin", line),
                 _preferred_mag=_referred(mags, _text(el, _t("preferredMagnitudeID")), "magnitude", line))


# --------------------------------------------------------------------------- file

def read_events(path: Path) -> list[Event]:
    """Event records of a QuakeML 1.2 file, in file order.

    Raises ``lxml.etree.XMLSyntaxError`` for XML that is not well-formed (with its line),
    ``OSError`` when the file cannot be read, :class:`NotMappable` (see module docstring)."""
    from lxml import etree
    out: list[Event] = []
    ep = None
    ctx = etree.iterparse(str(path), events=("start-ns", "end"), tag=_EVENT, remove_comments=False)
    for kind, item in ctx:
        if kind == "start-ns":
            if item[0] == "" and item[1] != BED:
                raise NotMappable(f"default namespace {item[1]!r} (ObsPy reads child names in it)")
            continue
        parent = item.getparent()
        if ep is None:
            if parent is None or parent.tag != _EP or parent.nsmap.get(None) != BED:
                raise NotMappable(f"an event outside eventParameters (line {item.sourceline})")
            ep = parent
        elif parent is not ep:
            raise NotMappable(f"an event outside the first eventParameters (line {item.sourceline})")
        out.append(_event(item))
        item.clear(keep_tail=True)  # why: the tree of read events is what made memory grow
        while item.getprevious() is not None:
            del ep[0]
    root = ctx.root
    if root is None or root.tag != ROOT_TAG:
        raise NotMappable(f"root element {getattr(root, 'tag', None)!r} is not QuakeML 1.2")
    first = root[0] if len(root) else None
    if first is None or first.tag != _EP or (ep is not None and first is not ep) \
            or sum(1 for c in root if c.tag == _EP) != 1 or first.nsmap.get(None) != BED:
        raise NotMappable("eventParameters is not the first and only child of the root in the BED 1.2 namespace")
    return out


__all__ = ["NotMappable", "parse_time", "read_events"]
