"""Command line of the batch side: ``python -m pipeline <command> --help``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import InputError

DEFAULT_DATA_DIR = "data"
DEFAULT_RAW_DIR = "data/raw/toc2me"


def _cmd_build(args) -> int:
    from . import build
    info = build.build(args.source, args.input, args.data_dir, args.seed, _build_options(args))
    print(json.dumps(info["rows"], indent=1))
    return 0


def _cmd_ensure(args) -> int:
    from . import build
    input_dir = args.input
    if args.source == "toc2me" and input_dir is None:
        from . import fetch
        fetch.fetch_toc2me(args.raw_dir)
        input_dir = args.raw_dir
    info, ran = build.ensure(args.source, input_dir, args.data_dir, args.seed, _build_options(args))
    print(f"{'built' if ran else 'up to date'}: {info['source']} tables in {args.data_dir}")
    return 0


def _cmd_fetch(args) -> int:
    from . import fetch
    kwargs = {"base_url": args.base_url} if args.base_url else {}
    paths = fetch.fetch_toc2me(args.dest, **kwargs)
    print(f"{len(paths)} files verified in {args.dest}")
    return 0


def _build_options(args):
    from .build import Options
    return Options(pick=not args.no_pick, pickers=tuple(args.pickers.split(",")), invert=not args.no_invert,
                   picks=args.picks, demo_waveform_events=args.demo_waveform_events, workers=args.workers)


def _cmd_pick(args) -> int:
    """Pick event folders and replace those events' rows of the chosen pickers."""
    import pandas as pd

    from . import picking, tables
    from .rejects import Rejects
    events = tables.read_table(args.data_dir, "events")
    stations = tables.read_table(args.data_dir, "stations")
    pickers = {n: picking.load_picker(n, args.weights) for n in args.pickers.split(",")}
    rejects = Rejects()
    pol, snips = picking.pick_folders(args.waveforms, events, stations, pickers, rejects)
    out = {"rejects": pd.concat([tables.read_table(args.data_dir, "rejects"), rejects.to_frame()], ignore_index=True)}
    if len(pol):
        old = _read_optional(args.data_dir, "polarities")
        if old is not None:
            replaced = old["event_id"].isin(pol["event_id"]) & old["method"].isin(list(pickers))
            pol = pd.concat([old[~replaced], pol], ignore_index=True)
        out["polarities"] = pol
    if len(snips):
        old = _read_optional(args.data_dir, "waveforms")
        if old is not None:
            snips = pd.concat([old[~old["event_id"].isin(snips["event_id"])], snips], ignore_index=True)
        out["waveforms"] = snips
    tables.write_tables(args.data_dir, out)
    print(f"{len(pol)} polarities from {pol['event_id'].nunique() if len(pol) else 0} events; {len(rejects)} rejects")
    return 0


def _read_optional(data_dir, name):
    from . import tables
    return tables.read_table(data_dir, name) if tables.table_path(data_dir, name).exists() else None


def _cmd_invert(args) -> int:
    """Recompute every computed mechanism of a data folder from its polarities."""
    import pandas as pd

    from . import invert, tables
    t = {n: tables.read_table(args.data_dir, n) for n in ("events", "stations", "mechanisms", "polarities", "velocity_model")}
    from .reviews import apply_reviews
    t["polarities"] = apply_reviews(t["polarities"], args.data_dir)  # the dashboard's reviewed picks win
    published = t["mechanisms"][t["mechanisms"]["source"] != "computed"]
    engine = {"auto": None, "fortran": True, "python": False}[args.engine]
    out = invert.invert(t["events"], t["polarities"], t["stations"], t["velocity_model"], picks=args.picks,
                        snr_min=args.snr_min, published=published, workers=args.workers, use_fortran=engine)
    out["mechanisms"] = pd.concat([published, out["mechanisms"]], ignore_index=True)
    tables.write_tables(args.data_dir, out)
    n = int((out["mechanisms"]["source"] == "computed").sum())
    print(f"{n} computed mechanisms, {len(out['unsolved'])} unsolved events")
    return 0


def _cmd_train(args) -> int:
    from . import training
    record = training.train(training.TrainConfig.from_args(args))
    print(training.summary(record))
    return 0


def _cmd_info(args) -> int:
    from . import build
    info = build.read_info(args.data_dir)
    if info is None:
        print(f"no complete build in {args.data_dir}")
        return 1
    print(json.dumps(info, indent=1))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(sp):
        sp.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="folder of the Parquet tables (default: data)")

    def source_args(sp):
        sp.add_argument("--source", choices=("demo", "toc2me"), default="demo",
                        help="demo: synthetic experiment from a fixed seed; toc2me: real data folder")
        sp.add_argument("--input", help="input folder laid out like the public ToC2ME data (source toc2me)")
        sp.add_argument("--seed", type=int, default=20161104, help="demo seed")
        data_args(sp)

    def stage_args(sp):
        sp.add_argument("--no-pick", action="store_true", help="skip the automatic pickers")
        sp.add_argument("--pickers", default="cnn,onset", help="comma-separated: cnn, onset, cct (default cnn,onset)")
        sp.add_argument("--no-invert", action="store_true", help="skip SKHASH (no computed mechanisms)")
        sp.add_argument("--picks", default="auto", help="polarities for SKHASH: auto (manual overrides the best "
                                                      "automatic picker), published, manual, cnn, onset, ...")
        sp.add_argument("--demo-waveform-events", type=int, default=60, help="demo events given synthetic waveforms")
        sp.add_argument("--workers", type=int, help="SKHASH processes (default: all cores)")

    b = sub.add_parser("build", help="build every table from a source (replaces the previous build atomically)")
    source_args(b)
    stage_args(b)
    b.set_defaults(func=_cmd_build)

    e = sub.add_parser("ensure", help="build only if the data folder has no build of this source; "
                                      "for toc2me without --input, fetch the public files first")
    source_args(e)
    stage_args(e)
    e.add_argument("--raw-dir", default=DEFAULT_RAW_DIR, help="where fetched ToC2ME files go")
    e.set_defaults(func=_cmd_ensure)

    f = sub.add_parser("fetch-toc2me", help="download the public ToC2ME files (pinned commit, sha256-verified)")
    f.add_argument("--dest", default=DEFAULT_RAW_DIR)
    f.add_argument("--base-url", help="mirror serving the repository layout (default: the pinned GitHub commit)")
    f.set_defaults(func=_cmd_fetch)

    pk = sub.add_parser("pick", help="run pickers over event folders of SAC/MiniSEED files into a data folder")
    pk.add_argument("--waveforms", required=True, help="folder of event folders (<event_id>/<net>.<sta>.<cha>.SAC)")
    pk.add_argument("--pickers", default="cnn", help="comma-separated: cnn, onset, cct")
    pk.add_argument("--weights", help="weights file for cnn (default: the committed model) or cct (required)")
    data_args(pk)
    pk.set_defaults(func=_cmd_pick)

    iv = sub.add_parser("invert", help="recompute the computed mechanisms of a data folder with SKHASH")
    iv.add_argument("--picks", default="auto", help="auto, published, manual, cnn, onset, ...")
    iv.add_argument("--snr-min", type=float, default=2.0, help="automatic picks need SNR above this")
    iv.add_argument("--workers", type=int, help="SKHASH processes (default: all cores)")
    iv.add_argument("--engine", choices=("auto", "fortran", "python"), default="auto", help="SKHASH grid search")
    data_args(iv)
    iv.set_defaults(func=_cmd_invert)

    tr = sub.add_parser("train", help="train the production polarity picker (seeded, reproducible)")
    from .training import TrainConfig
    TrainConfig.add_arguments(tr)
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("evaluate", help="evaluate the polarity pickers into the model_eval table")
    from . import evaluate
    evaluate.add_arguments(ev)
    ev.set_defaults(func=evaluate.run)

    i = sub.add_parser("info", help="describe the build in a data folder")
    data_args(i)
    i.set_defaults(func=_cmd_info)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
