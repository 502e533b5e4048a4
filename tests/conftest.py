"""Shared test fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def toc2me_path() -> Path:
    """The real ToC2ME data folder: $TOC2ME_DIR, else ``shared/toc2me`` next to the repo."""
    env = os.environ.get("TOC2ME_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "toc2me"


@pytest.fixture(scope="session")
def toc2me_dir() -> Path:
    """Path of the real ToC2ME folder; skips the test when it is absent."""
    path = toc2me_path()
    if not (path / "catalog" / "ToC2ME.xlsx").is_file():
        pytest.skip(f"ToC2ME data not found at {path} (set TOC2ME_DIR to the shared/toc2me folder)")
    return path


@pytest.fixture(scope="session")
def toc2me_waveforms_dir() -> Path:
    """Path of the real ToC2ME folder for tests of its waveforms and picks (they need its
    ``waveforms/``, not the catalogue); skips the test when that is absent."""
    path = toc2me_path()
    if not (path / "waveforms").is_dir():
        pytest.skip(f"shared ToC2ME data not found at {path} (set TOC2ME_DIR)")
    return path


@pytest.fixture(scope="session")
def toc2me_tables(toc2me_dir):
    """All tables of ``pipeline.ingest.toc2me.load`` on the real data (loaded once, ~2 s).
    Tests must not modify them."""
    from pipeline.ingest import toc2me
    return toc2me.load(toc2me_dir)


# --- dashboard fixtures (components/, pages/, app.py) ------------------------------------

@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> Path:
    """A data folder with every table of a full demo build (base tables, synthetic
    waveforms of 30 events picked by the CNN and the onset baseline, computed mechanisms).
    Session-scoped (~10 s); tests must not write to it: copy it first."""
    from pipeline import build

    data_dir = tmp_path_factory.mktemp("demo_data")
    build.build("demo", data_dir=data_dir, options=build.Options(demo_waveform_events=30))
    return data_dir


@pytest.fixture(autouse=True)
def _reset_dash_registry():
    """Dash keeps pages and ``dash.callback`` registrations in module globals; clear them
    around every test (vizro style) so apps built by different tests do not mix. Does
    nothing unless Dash is already imported."""
    import sys

    def clear():
        pages, callbacks = sys.modules.get("dash._pages"), sys.modules.get("dash._callback")
        if pages is not None:
            pages.PAGE_REGISTRY.clear()
        if callbacks is not None:
            callbacks.GLOBAL_CALLBACK_LIST.clear()
            callbacks.GLOBAL_CALLBACK_MAP.clear()
            callbacks.GLOBAL_INLINE_SCRIPTS.clear()

    clear()
    yield
    clear()


# --- a user's own experiment (--source files) without the optional tables -----------------

def _strip_project(root: Path, keys: tuple[str, ...]) -> None:
    """Remove ``keys`` (and the files they name) from ``root/project.toml``."""
    import re
    import tomllib

    toml = root / "project.toml"
    cfg = tomllib.loads(toml.read_text())
    for k in keys:
        if k in cfg:
            (root / cfg[k]).unlink()
    lines = [ln for ln in toml.read_text().splitlines()
             if not any(re.match(rf"{k}\s*=", ln) for k in keys)]
    toml.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def files_project_dir(demo_data_dir, tmp_path_factory) -> Path:
    """A small ``--source files`` project, as a user would bring it: the demo's events of
    ML >= 0.3 (187) exported with ``export --format project`` (QuakeML with published
    mechanisms (``--mech all``: every mechanism row, not only the default quality-A population) and the P
    picks of 5 events, StationXML, MiniSEED of those 5 events, vp.csv),
    **without** wells, stages and injection. Tests must not write to it: copy it first."""
    from pipeline.__main__ import main

    root = tmp_path_factory.mktemp("files_project") / "project"
    assert main(["export", "--format", "project", "--data-dir", str(demo_data_dir), "--out", str(root),
                 "--mmin", "0.3", "--name", "Tiny experiment", "--mech", "all"]) == 0
    _strip_project(root, ("wells", "stages", "injection"))
    return root


@pytest.fixture(scope="session")
def files_data_dir(files_project_dir, tmp_path_factory) -> Path:
    """The data folder built from :func:`files_project_dir` (~15 s): 187 events, all with a
    null ``cluster``, waveforms of 5; published mechanisms plus a few computed ones; empty
    ``wells``, ``stages`` and ``injection`` tables. Tests must not write to it."""
    from pipeline import build

    data_dir = tmp_path_factory.mktemp("files_data")
    build.build("files", files_project_dir, data_dir,
                options=build.Options(workers=1, dashboard=False, progress=False))
    return data_dir


@pytest.fixture(scope="session")
def files_bare_data_dir(files_project_dir, tmp_path_factory) -> Path:
    """As :func:`files_data_dir`, from a project without ``velocity_model`` whose QuakeML has
    no focal mechanisms: no mechanism at all (no published, none computed)."""
    import shutil

    from obspy import read_events

    from pipeline import build

    root = tmp_path_factory.mktemp("files_bare_project") / "project"
    shutil.copytree(files_project_dir, root)
    _strip_project(root, ("velocity_model",))
    cat = read_events(str(root / "catalog.xml"))
    for ev in cat:
        ev.focal_mechanisms = []
        ev.preferred_focal_mechanism_id = None
    cat.write(str(root / "catalog.xml"), format="QUAKEML")
    data_dir = tmp_path_factory.mktemp("files_bare_data")
    build.build("files", root, data_dir, options=build.Options(workers=1, dashboard=False, progress=False))
    return data_dir
