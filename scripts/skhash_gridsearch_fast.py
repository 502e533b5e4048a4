"""Write SKHASH's Fortran grid search (``gridsearch.f``) with a faster misfit loop.

SKHASH 1.1.5's ``FOCALAMP_MC_WT`` spends ~95 % of a ToC2ME-sized event in one loop: for
each of the ``nmc`` trials, for each of the ~31,000 trial mechanisms (``irot``), for each
station, it projects the ray on the mechanism's axes and counts misfit polarities. The
station loop is innermost and carries S/P-ratio table look-ups, so the compiler cannot
vectorise it (~9 ns per station and mechanism here).

When an event has no S/P amplitude ratio (every ``sp_amp`` <= -9, as in every run of this
pipeline), the patched file takes a second path that swaps the two loops: stations outside,
mechanisms inside, over contiguous copies of the axes. For every mechanism the sums are the
same float operations in the same station order as SKHASH's loop (each ``irot`` has its own
accumulator), so the misfit counts, the acceptable planes and everything after them are
**bit-identical** to SKHASH's own build (checked by ``tests/test_skhash_fast_gridsearch.py``,
which compiles both). Events with S/P ratios run SKHASH's loop unchanged.

SKHASH is public domain (CC0-1.0, USGS); the patched file is written at build time from the
installed one, never stored here. Anchors are checked: a SKHASH version whose loop differs
is refused (exit 1), so the build script falls back to compiling the file as shipped.

    python scripts/skhash_gridsearch_fast.py SRC.f DEST.f
"""
from __future__ import annotations

import sys
from pathlib import Path

# after the last declaration (f2py reads declarations before the first statement)
DECL_ANCHOR = "      save fit,afit,weight_fit,weight_afit\n"
DECLARATIONS = """\
C pipeline patch: contiguous axes, per-mechanism sums (no S/P path)
      real c11(ncoor),c12(ncoor),c13(ncoor)
      real c31(ncoor),c32(ncoor),c33(ncoor)
      real wmiss(ncoor)
      real fa1,fa2,fa3,fpq,fb1,fb3,fmiss
      integer ipobs,jpol
      logical noamp
      save c11,c12,c13,c31,c32,c33,wmiss
"""

SETUP_ANCHOR = "C loop over multiple trials\n"
SETUP = """\
C pipeline patch: loop-swapped path when no S/P ratio is given
      noamp=.true.
      do i=1,npsta
        if (sp_amp(i).gt.-9.) noamp=.false.
      end do
      if (noamp) then
        do irot=1,nrot
          c11(irot)=b1(1,irot)
          c12(irot)=b1(2,irot)
          c13(irot)=b1(3,irot)
          c31(irot)=b3(1,irot)
          c32(irot)=b3(2,irot)
          c33(irot)=b3(3,irot)
        end do
      end if

"""

LOOP_ANCHOR = "         weight_nmissmin=99999.0\n         do 420 irot=1,nrot\n"
# The sums below repeat SKHASH's loop 420 for sp_amp <= -9: qmiss and qcount stay 0, nmiss
# and ncount add p_qual in station order. ncount does not depend on the mechanism, so it
# is summed once; x + 0.0 == x for the non-negative sums, so adding fmiss = 0 changes nothing.
FAST_PATH = """\
         if (noamp) then
           ncount=0.
           do ista=1,npsta
             if (p_pol(ista).ne.0) ncount=ncount+p_qual(ista)
           end do
           do irot=1,nrot
             wmiss(irot)=0.
           end do
           do 402 ista=1,npsta
             if (p_pol(ista).eq.0) goto 402
             fa1=p_a1(ista)
             fa2=p_a2(ista)
             fa3=p_a3(ista)
             fpq=p_qual(ista)
             ipobs=p_pol(ista)
             do irot=1,nrot
               fb1=c11(irot)*fa1+c12(irot)*fa2+c13(irot)*fa3
               fb3=c31(irot)*fa1+c32(irot)*fa2+c33(irot)*fa3
               jpol=-1
               if (fb1*fb3.gt.0.) jpol=1
               fmiss=0.
               if (jpol.ne.ipobs) fmiss=fpq
               wmiss(irot)=wmiss(irot)+fmiss
             end do
402        continue
           do irot=1,nrot
             nmiss=wmiss(irot)
             fit(irot)=(nmiss)
             if (ncount.eq.0.0) then
               fit(irot)=0.0
             else
               weight_fit(irot)=(nmiss/ncount)
             end if
             afit(irot)=0.
             weight_afit(irot)=0.
             if ((weight_fit(irot)).lt.weight_nmissmin) then
               weight_nmissmin=weight_fit(irot)
             end if
             if ((weight_afit(irot)).lt.weight_qmissmin) then
               weight_qmissmin=weight_afit(irot)
             end if
             if (nmiss.lt.nmissmin) then
               nmissmin=nmiss
             end if
             if (0..lt.qmissmin) then
               qmissmin=0.
             end if
           end do
           goto 421
         end if
"""
END_ANCHOR = "420      continue ! end irot loop\n"
END = "421      continue\n"


def patch(text: str) -> str:
    """The patched source; ValueError when an anchor is missing or not unique."""
    for block in (DECLARATIONS, SETUP, FAST_PATH, END):  # fixed form ignores columns > 72
        assert all(len(ln) <= 72 for ln in block.splitlines()), block
    for anchor in (DECL_ANCHOR, SETUP_ANCHOR, LOOP_ANCHOR, END_ANCHOR):
        if text.count(anchor) != 1:
            raise ValueError(f"anchor not found exactly once: {anchor.strip()!r}")
    if "421 " in text:
        raise ValueError("label 421 already used")
    text = text.replace(DECL_ANCHOR, DECL_ANCHOR + DECLARATIONS)
    text = text.replace(SETUP_ANCHOR, SETUP + SETUP_ANCHOR)
    head, tail = LOOP_ANCHOR.splitlines(keepends=True)
    text = text.replace(LOOP_ANCHOR, head + FAST_PATH + tail)
    text = text.replace(END_ANCHOR, END_ANCHOR + END)
    return text


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        out = patch(Path(argv[1]).read_text())
    except ValueError as exc:
        print(f"not patched ({exc}): SKHASH's grid search is built as shipped", file=sys.stderr)
        return 1
    Path(argv[2]).write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
