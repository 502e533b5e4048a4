"""Command line of the batch side: ``python -m pipeline <command> --help``."""
from __future__ import annotations

import argparse
import json
import logging
import sys

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
        from .ingest import fetch
        fetch.fetch_toc2me(args.raw_dir)
        input_dir = args.raw_dir
    info, ran = build.ensure(args.source, input_dir, args.data_dir, args.seed, _build_options(args))
    print(f"{'built' if ran else 'up to date'}: {info['source']} tables in {args.data_dir}")
    return 0


def _cmd_fetch(args) -> int:
    from .ingest import fetch
    kwargs = {"base_url": args.base_url} if args.base_url else {}
    paths = fetch.fetch_toc2me(args.dest, **kwargs)
    print(f"{len(paths)} files verified in {args.dest}")
    if args.waveforms == "none":
        return 0
    from .io import zenodo
    try:
        res = zenodo.fetch_waveforms(args.dest, args.waveforms, api=args.zenodo_api or zenodo.DEFAULT_API,
                                     keep_archives=not args.delete_archives)
    except fetch.FetchError as exc:  # a clear message; what is verified stays, a re-run resumes
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Zenodo record {zenodo.RECORDS[args.waveforms]}: {len(res.files)} file(s) verified "
          f"({res.files_downloaded} downloaded, {res.bytes_downloaded} bytes); {res.members_extracted} "
          f"member(s) extracted, {res.members_skipped} already present, in {res.waveform_dir}")
    return 0


def _build_options(args):
    from .build import Options
    return Options(pick=not args.no_pick, pickers=tuple(args.pickers.split(",")), weights=args.weights,
                   invert=not args.no_invert, picks=args.picks, demo_waveform_events=args.demo_waveform_events,
                   workers=args.workers, scheduler=args.scheduler, chunk_events=args.chunk_events,
                   event_timeout=args.event_timeout, fresh=args.fresh, retry_failed=args.retry_failed,
                   use_fortran=_ENGINES[args.engine])


_ENGINES = {"auto": None, "fortran": True, "python": False}


def _cmd_pick(args) -> int:
    """Pick event folders and replace those events' rows of the chosen pickers."""
    from .flow import single_stage
    out = single_stage.pick(args.data_dir, args.waveforms, tuple(args.pickers.split(",")), args.weights,
                            workers=args.workers, scheduler=args.scheduler, chunk_events=args.chunk_events,
                            fresh=args.fresh, retry_failed=args.retry_failed)
    print(f"{out['polarities']} polarities from {out['events']} event folders in {out['chunks']} chunks "
          f"({out['failed']} failed); {out['rejects']} rejects")
    return 0


def _cmd_invert(args) -> int:
    """Recompute every computed mechanism of a data folder from its polarities."""
    from .flow import single_stage
    out = single_stage.invert(args.data_dir, picks=args.picks, snr_min=args.snr_min, use_fortran=_ENGINES[args.engine],
                              event_timeout=args.event_timeout, workers=args.workers, scheduler=args.scheduler,
                              chunk_events=args.chunk_events, retry_failed=args.retry_failed)
    print(f"{out['computed']} computed mechanisms, {out['unsolved']} unsolved events")
    return 0


def _cmd_train(args) -> int:
    from .picking import training
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
    p = _Parser(prog="python -m pipeline", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(sp):
        sp.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="folder of the Parquet tables (default: data)")

    def source_args(sp):
        sp.add_argument("--source", choices=("demo", "toc2me", "files"), default="demo",
                        help="demo: synthetic experiment from a fixed seed; toc2me: the public ToC2ME folder; "
                             "files: your own experiment in standard formats, described by INPUT/project.toml")
        sp.add_argument("--input", help="input folder: laid out like the public ToC2ME data (toc2me), or holding "
                                        "project.toml (files)")
        sp.add_argument("--seed", type=int, default=20161104, help="demo seed")
        data_args(sp)

    def stage_args(sp):
        sp.add_argument("--no-pick", action="store_true", help="skip the automatic pickers")
        sp.add_argument("--pickers", default="cnn,onset", help="comma-separated: cnn, onset, cct (default cnn,onset)")
        sp.add_argument("--no-invert", action="store_true", help="skip SKHASH (no computed mechanisms)")
        sp.add_argument("--picks", default="auto", help="polarities for SKHASH: auto (manual overrides the best "
                                                      "automatic picker), published, manual, cnn, onset, ...")
        sp.add_argument("--demo-waveform-events", type=int, default=60, help="demo events given synthetic waveforms")
        sp.add_argument("--weights", help="weights file for cnn (default: the committed model) or cct (required)")
        sp.add_argument("--engine", choices=("auto", "fortran", "python"), default="auto", help="SKHASH grid search")
        sp.add_argument("--event-timeout", type=float, default=120.0,
                        help="per-event SKHASH limit, s: an event over it is unsolved ('timeout') (default 120)")
        sp.add_argument("--fresh", action="store_true", help="discard the chunks of earlier (interrupted) builds")
        dask_args(sp)

    def dask_args(sp):
        sp.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
        sp.add_argument("--scheduler", help="run on an existing Dask scheduler, e.g. tcp://HOST:8786 "
                                            "(default: $FM_DASK_SCHEDULER, else a LocalCluster)")
        sp.add_argument("--chunk-events", type=int, default=25, help="target events per task (default 25)")
        sp.add_argument("--retry-failed", action="store_true", help="run chunks again that failed in an earlier run")

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
    f.add_argument("--waveforms", choices=("none", "fm", "all"), default="none",
                   help="also fetch waveform archives from Zenodo: fm = the 2,519 focal-mechanism events "
                        "(10.5281/zenodo.15165318), all = every event (10.5281/zenodo.14185578); resumable, "
                        "checksum-verified, extracted into DEST/waveforms/ (default: none)")
    f.add_argument("--zenodo-api", help="Zenodo REST API base URL (default: https://zenodo.org/api)")
    f.add_argument("--delete-archives", action="store_true",
                   help="delete each Zenodo archive once fully extracted (saves disk; it is not fetched again)")
    f.set_defaults(func=_cmd_fetch)

    pk = sub.add_parser("pick", help="run pickers over event folders of SAC/MiniSEED files into a data folder")
    pk.add_argument("--waveforms", required=True, help="folder of event folders (<event_id>/<net>.<sta>.<cha>.SAC)")
    pk.add_argument("--pickers", default="cnn", help="comma-separated: cnn, onset, cct")
    pk.add_argument("--weights", help="weights file for cnn (default: the committed model) or cct (required)")
    pk.add_argument("--fresh", action="store_true", help="discard the picking chunks of earlier runs")
    dask_args(pk)
    data_args(pk)
    pk.set_defaults(func=_cmd_pick)

    iv = sub.add_parser("invert", help="recompute the computed mechanisms of a data folder with SKHASH")
    iv.add_argument("--picks", default="auto", help="auto, published, manual, cnn, onset, ...")
    iv.add_argument("--snr-min", type=float, default=2.0, help="automatic picks need SNR above this")
    iv.add_argument("--engine", choices=("auto", "fortran", "python"), default="auto", help="SKHASH grid search")
    iv.add_argument("--event-timeout", type=float, default=120.0, help="per-event SKHASH limit, s (default 120)")
    dask_args(iv)
    data_args(iv)
    iv.set_defaults(func=_cmd_invert)

    tr = sub.add_parser("train", help="train the production polarity picker (seeded, reproducible)")
    from .picking.training import TrainConfig
    TrainConfig.add_arguments(tr)
    tr.set_defaults(func=_cmd_train)

    ns = sub.add_parser("nested", help="fully nested LOEO evaluation of the polarity CNN: trains inner fold "
                        "models without the held-out event (2 x k trainings), writes <model>.full_nested.json")
    from .picking import full_nested
    full_nested.add_arguments(ns)
    ns.set_defaults(func=full_nested.run)

    ev = sub.add_parser("evaluate", help="evaluate the polarity pickers into the model_eval table")
    from .picking import evaluate
    evaluate.add_arguments(ev)
    ev.set_defaults(func=evaluate.run)
    rb = sub.add_parser("robustness", help="demo study: mechanisms from waveforms made with a perturbed velocity "
                                           "model and station statics, inverted with the nominal model")
    from .demo import robustness
    robustness.add_arguments(rb)
    data_args(rb)
    rb.set_defaults(func=robustness.run)
    from .demo import synth_archive; synth_archive.add_cli(sub)  # noqa: E702 - one registration line
    from .export import cli as export_cli; export_cli.add_cli(sub)  # noqa: E702 - one registration line
    from .ingest import fdsn; fdsn.add_cli(sub)  # noqa: E702 - one registration line
    from .analysis import stress; stress.add_cli(sub)  # noqa: E702 - one registration line
    from .mechanisms import composite; composite.add_cli(sub)  # noqa: E702 - one registration line
    from .review import accounts; accounts.add_cli(sub)  # noqa: E702 - one registration line

    i = sub.add_parser("info", help="describe the build in a data folder")
    data_args(i)
    i.set_defaults(func=_cmd_info)
    return p


class _Parser(argparse.ArgumentParser):
    """Bad flags or values: one line ``error: <what> (see <prog> --help)``, exit 2 (no usage dump)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _describe(exc: BaseException) -> tuple[str, int]:
    """One line ``error: <cause> (<what to do>)`` for an exception escaping a command, and
    the exit status: 2 for bad input (a missing or unusable file/folder/value), 1 otherwise."""
    from .ingest.fetch import ChecksumError, FetchError
    cause = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, InputError):  # its reason may already say what to do, in brackets
        return cause if cause.endswith(")") else f"{cause} (fix that input or point the command at another one)", 2
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return f"{cause} (check the path)", 2
    if isinstance(exc, FileExistsError):
        return f"{cause} (remove it or choose another destination)", 2
    if isinstance(exc, PermissionError):
        return f"{cause} (check the permissions of that path)", 1
    if isinstance(exc, ChecksumError):
        return f"{cause} (run the command again; a repeated mismatch means the source changed)", 1
    if isinstance(exc, FetchError):
        return (f"{cause} (check the network connection and run the command again, it resumes; or use a local "
                f"copy: --input DIR, make run SOURCE=toc2me INPUT=DIR)"), 1
    if isinstance(exc, MemoryError):
        return "out of memory (use fewer --workers or a smaller --chunk-events)", 1
    if isinstance(exc, OSError):
        return f"{cause} (check the disk and the paths involved)", 1
    return f"{type(exc).__name__}: {cause} (an unexpected failure: run with -v for the traceback)", 1


def main(argv=None) -> int:
    """Run one command; any failure is one line on stderr and a non-zero status (2 bad
    input, 1 otherwise, 130 interrupted); ``-v`` prints the traceback too."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted (run the command again; builds and fetches resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear line
        if args.verbose:
            import traceback
            traceback.print_exc()
        message, status = _describe(exc)
        print(f"error: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
