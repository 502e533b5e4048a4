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
    info = build.build(args.source, args.input, args.data_dir, args.seed)
    print(json.dumps(info["rows"], indent=1))
    return 0


def _cmd_ensure(args) -> int:
    from . import build
    input_dir = args.input
    if args.source == "toc2me" and input_dir is None:
        from . import fetch
        fetch.fetch_toc2me(args.raw_dir)
        input_dir = args.raw_dir
    info, ran = build.ensure(args.source, input_dir, args.data_dir, args.seed)
    print(f"{'built' if ran else 'up to date'}: {info['source']} tables in {args.data_dir}")
    return 0


def _cmd_fetch(args) -> int:
    from . import fetch
    kwargs = {"base_url": args.base_url} if args.base_url else {}
    paths = fetch.fetch_toc2me(args.dest, **kwargs)
    print(f"{len(paths)} files verified in {args.dest}")
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

    b = sub.add_parser("build", help="build every table from a source (replaces the previous build atomically)")
    source_args(b)
    b.set_defaults(func=_cmd_build)

    e = sub.add_parser("ensure", help="build only if the data folder has no build of this source; "
                                      "for toc2me without --input, fetch the public files first")
    source_args(e)
    e.add_argument("--raw-dir", default=DEFAULT_RAW_DIR, help="where fetched ToC2ME files go")
    e.set_defaults(func=_cmd_ensure)

    f = sub.add_parser("fetch-toc2me", help="download the public ToC2ME files (pinned commit, sha256-verified)")
    f.add_argument("--dest", default=DEFAULT_RAW_DIR)
    f.add_argument("--base-url", help="mirror serving the repository layout (default: the pinned GitHub commit)")
    f.set_defaults(func=_cmd_fetch)

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
