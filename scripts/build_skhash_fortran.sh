#!/usr/bin/env bash
# Build SKHASH's optional Fortran grid search (SKHASH/functions/gridsearch.f) with f2py
# and install the extension module next to it, so that `$use_fortran True` (and
# pipeline.mechanisms.skhash with use_fortran=None/True) can import `functions.gridsearch`.
#
# Usage: scripts/build_skhash_fortran.sh [PYTHON]
#   PYTHON defaults to .venv/bin/python of the repository (else `python3`).
# Needs gfortran (Debian/Ubuntu: apt-get install gfortran). Without it the script prints a
# message and exits 0: SKHASH then runs its pure-Python grid search (slower; results agree within 1 deg Kagan).
# numpy < 2 uses the distutils f2py backend; numpy >= 2 needs `--backend meson` plus the
# meson and ninja packages (handled below, untested here).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$here/.venv/bin/python" ]]; then PY="$here/.venv/bin/python"; else PY=python3; fi
fi

# absolute path (the build runs in a temp folder); not realpath: that would leave the venv
if [[ "$PY" == */* ]]; then PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"; fi

if ! command -v gfortran >/dev/null 2>&1; then
  echo "gfortran not found: skipping the SKHASH Fortran build (pure-Python grid search will be used)."
  exit 0
fi

pkgdir="$("$PY" -c 'import os, importlib.util as u; s = u.find_spec("SKHASH"); print(os.path.join(os.path.dirname(s.origin), "functions"))')"
src="$pkgdir/gridsearch.f"
if [[ ! -f "$src" ]]; then
  echo "error: $src not found (is SKHASH installed for $PY?)" >&2
  exit 1
fi

npmajor="$("$PY" -c 'import numpy; print(numpy.__version__.split(".")[0])')"
extra=()
if [[ "$npmajor" -ge 2 ]]; then extra=(--backend meson); fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The misfit loop is rewritten for speed with bit-identical results (see the script's
# docstring); a SKHASH version it does not recognise is compiled as shipped.
if "$PY" "$here/scripts/skhash_gridsearch_fast.py" "$src" "$tmp/gridsearch.f"; then
  echo "gridsearch.f: misfit loop swapped for the no-S/P case (scripts/skhash_gridsearch_fast.py)"
else
  cp "$src" "$tmp/"
fi
echo "Building gridsearch extension with $PY (numpy major $npmajor) in $tmp ..."
( cd "$tmp" && "$PY" -m numpy.f2py -c gridsearch.f -m gridsearch "${extra[@]}" >build.log 2>&1 ) || {
  echo "error: f2py build failed; last lines of the log:" >&2
  tail -n 30 "$tmp/build.log" >&2
  exit 1
}
so=("$tmp"/gridsearch*.so)
if [[ ! -f "${so[0]}" ]]; then
  echo "error: no gridsearch*.so produced" >&2
  exit 1
fi
for f in "${so[@]}"; do
  # copy then rename: never rewrite in place a .so that a running SKHASH may have mapped
  cp "$f" "$pkgdir/.$(basename "$f").tmp"
  mv -f "$pkgdir/.$(basename "$f").tmp" "$pkgdir/$(basename "$f")"
done
echo "Installed $(basename "${so[0]}") into $pkgdir"

# Check that SKHASH's own import path finds it.
"$PY" - <<'PYEOF'
import importlib, SKHASH  # SKHASH/__init__.py puts its folder on sys.path
m = importlib.import_module("functions.gridsearch")
assert hasattr(m, "focalamp_mc_wt"), "focalamp_mc_wt missing from the built module"
print("OK: functions.gridsearch imports (focalamp_mc_wt available)")
PYEOF
