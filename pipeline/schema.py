"""The data contract: every table's columns, types and meaning, in one place.

Both the writer (``pipeline``) and the reader (the Dash app, through DuckDB) import this
module, so a column renamed here is renamed everywhere.

Conventions (apply to every table):

* times are UTC, ``timestamp[us, tz=UTC]``; dates (daily injection) are calendar dates;
* angles are degrees: strike 0-360 clockwise from north, dip 0-90, rake -180..180
  (Aki & Richards); trends 0-360 clockwise from north, plunges 0-90 downward;
* depths are km, positive down; elevations m, positive up;
* ``x_km`` (east) / ``y_km`` (north) are local tangent-plane coordinates from the origin
  stored in ``frame`` (see :mod:`pipeline.geo`);
* event ids are strings, the origin time written ``YYYYMMDDhhmmss.fff``;
* polarities are in the *true ground motion* convention (+1 up / compression,
  -1 down / dilatation, 0 undetermined), station reversal already applied.

A table may carry extra columns beyond the required ones (e.g. the demo scenario's
``truth_*`` columns); they are kept as written.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TIME = pa.timestamp("us", tz="UTC")
F64 = pa.float64()
F32 = pa.float32()
I64 = pa.int64()
I32 = pa.int32()
STR = pa.string()
BOOL = pa.bool_()

SCHEMA_VERSION = 2  #: 2: polarities.p_time


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name, typ, doc, nullable=True):
    return Column(name, typ, doc, nullable)


EVENTS = Table(
    "events",
    "The earthquake catalogue (one row per located event).",
    (
        _c("event_id", STR, "origin time YYYYMMDDhhmmss.fff (UTC)", False),
        _c("time", TIME, "origin time, UTC", False),
        _c("lat", F64, "latitude, deg (catalogue location)", False),
        _c("lon", F64, "longitude, deg, east positive", False),
        _c("depth_km", F64, "depth, km, positive down"),
        _c("magnitude", F64, "local magnitude ML"),
        _c("x_km", F64, "east of the frame origin, km", False),
        _c("y_km", F64, "north of the frame origin, km", False),
        _c("cluster", STR, "named region (pipeline.ingest.regions), null if none"),
        _c("source_row", I64, "row of the event in its input file (1-based, header = row 1)"),
    ),
    key=("event_id",),
)

STATIONS = Table(
    "stations",
    "Seismic stations.",
    (
        _c("network", STR, "FDSN network code", False),
        _c("station", STR, "station code (always a string, even when all digits)", False),
        _c("lat", F64, "latitude, deg", False),
        _c("lon", F64, "longitude, deg", False),
        _c("elevation_m", F64, "elevation, m, positive up"),
        _c("x_km", F64, "east, km", False),
        _c("y_km", F64, "north, km", False),
        _c("reversed", BOOL, "recorded vertical polarity is inverted (true up = recorded down)", False),
    ),
    key=("network", "station"),
)

WELLS = Table(
    "wells",
    "Map-view well paths, one row per vertex, ordered along the path as given (toe first for ToC2ME).",
    (
        _c("well", STR, "well name (A-D for ToC2ME)", False),
        _c("vertex", I32, "0-based vertex index along the path", False),
        _c("lat", F64, "latitude, deg", False),
        _c("lon", F64, "longitude, deg", False),
        _c("x_km", F64, "east, km", False),
        _c("y_km", F64, "north, km", False),
    ),
    key=("well", "vertex"),
)

STAGES = Table(
    "stages",
    "Hydraulic-fracturing stages.",
    (
        _c("well", STR, "well name", False),
        _c("stage_no", I32, "1-based stage number within the well, in time order", False),
        _c("time", TIME, "stage start, UTC as given (ToC2ME: hour resolution, zone not stated)", False),
        _c("lat", F64, "stage position latitude, deg", False),
        _c("lon", F64, "stage position longitude, deg", False),
        _c("x_km", F64, "east, km", False),
        _c("y_km", F64, "north, km", False),
        _c("day_index", F64, "treatment-programme day number (1 = first day)"),
    ),
    key=("well", "stage_no"),
)

INJECTION = Table(
    "injection",
    "Daily injection rates. A row describes the whole calendar day `date` (UTC).",
    (
        _c("date", pa.date32(), "calendar day the rate describes", False),
        _c("rate_m3_min", F64, "average injection rate, m3/min", False),
        _c("volume_m3", F64, "injected volume, m3"),
        _c("well", STR, "well, null where the source does not say (ToC2ME)"),
        _c("source_row", I64, "row in the input file (1-based, header = row 1)"),
    ),
)

MECHANISMS = Table(
    "mechanisms",
    "Focal mechanisms, published or computed. Plane 1 is the plane the source reports.",
    (
        _c("event_id", STR, "event id (matches events.event_id)", False),
        _c("source", STR, "'published' or 'computed'", False),
        _c("time", TIME, "origin time of the matched catalogue event", False),
        _c("lat", F64, "catalogue latitude, deg (location solution B for ToC2ME)", False),
        _c("lon", F64, "catalogue longitude, deg", False),
        _c("depth_km", F64, "catalogue depth, km"),
        _c("x_km", F64, "east, km (catalogue location)", False),
        _c("y_km", F64, "north, km (catalogue location)", False),
        _c("lat_skhash", F64, "latitude used by SKHASH, deg (solution A), null if unknown"),
        _c("lon_skhash", F64, "longitude used by SKHASH, deg"),
        _c("depth_km_skhash", F64, "depth used by SKHASH, km"),
        _c("magnitude", F64, "ML of the matched catalogue event"),
        _c("strike", F64, "plane 1 strike, deg", False),
        _c("dip", F64, "plane 1 dip, deg", False),
        _c("rake", F64, "plane 1 rake, deg", False),
        _c("strike2", F64, "auxiliary plane strike, deg", False),
        _c("dip2", F64, "auxiliary plane dip, deg", False),
        _c("rake2", F64, "auxiliary plane rake, deg", False),
        _c("p_trend", F64, "P axis trend, deg"),
        _c("p_plunge", F64, "P axis plunge, deg"),
        _c("b_trend", F64, "B (null) axis trend, deg"),
        _c("b_plunge", F64, "B axis plunge, deg"),
        _c("t_trend", F64, "T axis trend, deg"),
        _c("t_plunge", F64, "T axis plunge, deg"),
        _c("quality", STR, "SKHASH quality A-D, null if unknown"),
        _c("group", STR, "strike/dip family by the group rule (pipeline.mechanisms.groups): g1..g4, other", False),
        _c("faulting_style", STR, "rake rule: strike-slip, reverse, normal", False),
        _c("zoback_class", STR, "Zoback (1992) regime from P/B/T plunges: NF NS SS TS TF U", False),
        _c("cluster", STR, "named region (pipeline.ingest.regions), null if none"),
        _c("n_polarities", I32, "number of polarities used, null if unknown"),
        _c("polarity_misfit", F64, "SKHASH polarity misfit, percent"),
        _c("fault_plane_uncertainty", F64, "SKHASH fault-plane uncertainty, deg"),
        _c("prob_mech", F64, "SKHASH mechanism probability, percent"),
        _c("sta_distribution_ratio", F64, "SKHASH station distribution ratio, percent"),
        _c("published_set", STR, "which published file(s) list it, null for computed"),
        _c("aux_plane_uncertainty", F64, "SKHASH auxiliary-plane uncertainty, deg"),
        _c("picks", STR, "polarity method(s) the computed mechanism used (e.g. cnn, manual, published)"),
        _c("engine", STR, "SKHASH grid search that ran: fortran or python"),
        _c("kagan_to_published", F64, "Kagan angle to the published mechanism of the event, deg"),
    ),
    key=("event_id", "source"),
)

POLARITIES = Table(
    "polarities",
    "P first-motion polarities per event and station, one row per picking method.",
    (
        _c("event_id", STR, "event id", False),
        _c("network", STR, "network code", False),
        _c("station", STR, "station code", False),
        _c("channel", STR, "channel picked (vertical)"),
        _c("method", STR, "cnn, cct, onset, manual, published, ...", False),
        _c("polarity", pa.int8(), "true ground motion: +1 up, -1 down, 0 undetermined (reversal applied)", False),
        _c("prob_down_recorded", F64, "picker probability that the RECORDED first motion is down"),
        _c("snr", F64, "std(Z, P-0.5..P+0.5 s) / std(Z, start..P-0.5 s); 0 for dead traces"),
        _c("p_source", STR, "where the P time came from: picked (t1), predicted (t3), table"),
        _c("p_time", TIME, "P arrival time the picker's window is centred on (UTC); null where unknown"),
    ),
    key=("event_id", "network", "station", "method"),
)

WAVEFORMS = Table(
    "waveforms",
    "Short P-aligned snippets for display (the dashboard never reads SAC files).",
    (
        _c("event_id", STR, "event id", False),
        _c("network", STR, "network code", False),
        _c("station", STR, "station code", False),
        _c("channel", STR, "channel code", False),
        _c("sampling_rate", F64, "samples per second", False),
        _c("t0_s", F64, "time of the first sample relative to the P pick, s (negative)", False),
        _c("samples", pa.list_(F32), "recorded samples (no reversal applied), float32", False),
    ),
    key=("event_id", "network", "station", "channel"),
)

MECHANISM_STATIONS = Table(
    "mechanism_stations",
    "Per computed mechanism and station: the ray SKHASH used and whether the polarity fits.",
    (
        _c("event_id", STR, "event id", False),
        _c("network", STR, "network code", False),
        _c("station", STR, "station code", False),
        _c("takeoff_deg", F64, "SKHASH takeoff angle, deg from the UPWARD vertical (< 90 = up-going)", False),
        _c("azimuth_deg", F64, "source-to-station azimuth, deg clockwise from north", False),
        _c("distance_km", F64, "epicentral distance, km"),
        _c("polarity", pa.int8(), "true-motion polarity used (+1/-1)", False),
        _c("pol_agreement", BOOL, "polarity consistent with the preferred mechanism"),
    ),
    key=("event_id", "network", "station"),
)

ACCEPTABLE_PLANES = Table(
    "acceptable_planes",
    "SKHASH's set of acceptable planes per computed mechanism (for uncertainty display).",
    (
        _c("event_id", STR, "event id", False),
        _c("strike", F64, "deg", False),
        _c("dip", F64, "deg", False),
        _c("rake", F64, "deg", False),
    ),
)

UNSOLVED = Table(
    "unsolved",
    "Events for which no mechanism was computed, with the reason.",
    (
        _c("event_id", STR, "event id", False),
        _c("reason", STR, "why (too few polarities, azimuthal gap, SKHASH error, ...)", False),
        _c("picks", STR, "polarity method(s) used"),
    ),
)

VELOCITY_MODEL = Table(
    "velocity_model",
    "1-D P-velocity model used for takeoff angles (SKHASH), one row per depth node.",
    (
        _c("depth_km", F64, "depth of the node, km", False),
        _c("vp_km_s", F64, "P velocity, km/s", False),
    ),
)

MODEL_EVAL = Table(
    "model_eval",
    "Polarity-picker evaluation in long form: scalar metrics and curve points.",
    (
        _c("model", STR, "picker (cnn, cct, onset, reference, ...)", False),
        _c("dataset", STR, "evaluation set: manual50, reference_confident, loeo_heldout (nested), "
                           "loeo_heldout_full_nested (inner models without the held-out event), loeo_fold:<event>, loeo_selected_on_itself (optimistic), all_traces, demo_truth*, "
                           "reference_reported_2861 (the authors' own test set), training", False),
        _c("kind", STR, "metric, roc, pr, calibration, confusion, coverage, training", False),
        _c("name", STR, "metric name or curve/series name (shares have *_ci_low/*_ci_high: 95 % Wilson)",
           False),
        _c("x", F64, "curve abscissa (threshold, FPR, recall, predicted prob, epoch)"),
        _c("y", F64, "curve ordinate"),
        _c("value", F64, "scalar value"),
    ),
)

FRAME = Table(
    "frame",
    "The local coordinate frame: one row with the origin of x_km/y_km.",
    (
        _c("origin_lat", F64, "origin latitude, deg", False),
        _c("origin_lon", F64, "origin longitude, deg", False),
        _c("method", STR, "projection used", False),
        _c("dataset", STR, "dataset name (demo, toc2me, ...)", False),
    ),
)

REJECTS = Table(
    "rejects",
    "Every input row (or file) that did not make it into a table, with the reason.",
    (
        _c("file", STR, "input file, relative to the input folder", False),
        _c("line", I64, "1-based line/row in that file, null for a whole file"),
        _c("reason", STR, "why it was not used", False),
        _c("content", STR, "the raw row, truncated to 300 characters"),
        _c("stage", STR, "pipeline step that rejected it (ingest, join, ...)", False),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (EVENTS, STATIONS, WELLS, STAGES, INJECTION, MECHANISMS, FRAME, REJECTS,
                        POLARITIES, WAVEFORMS, MECHANISM_STATIONS, ACCEPTABLE_PLANES, UNSOLVED, VELOCITY_MODEL,
                        MODEL_EVAL)
}

#: tables every build must write (others are optional, e.g. truth_* for the demo)
REQUIRED_TABLES = ("events", "stations", "wells", "stages", "injection", "mechanisms", "frame", "rejects")


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {sorted(TABLES)}") from None
