"""``ps.export`` / ``probsched export``: a workload's best tuned kernel as a shared library
with a plain C ABI, its C header and its object file; ``ps.load_kernel`` loads such a library
back as a callable on numpy arrays, compiling nothing.

The kernel is the best correct record of the workload (same structural hash, so the same
parameters) for the target in the database, as ``probsched show`` picks it (by the median of
its timings), its trace replayed and built again for that target (:mod:`probsched.codegen.
library` writes the files). Before reporting success the library is loaded and checked
against the numpy reference on random inputs, with the runner's rounding-error tolerances.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codegen.library import LibraryFiles, load_library, write_library
from ..codegen.runtime import Kernel
from ..errors import CodegenError, ProbschedError
from ..ir.compute import Workload
from ..ir.reference import check_outputs, random_inputs, reference
from ..ir.rounding import TINY, error_bounds, tolerance
from ..search.database import Database, TuningDatabase
from ..search.records import Record
from ..target import Target, resolve


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote (``files``: library, header, object), from which record,
    and the largest error of the library against the reference (NaN: not checked)."""

    files: LibraryFiles
    record: Record
    workload: str
    max_abs_err: float

    @property
    def name(self) -> str:
        """The C function's name."""
        return self.files.signature.entry


def export(workload: Workload, directory: str | os.PathLike[str], *,
           db: str | os.PathLike[str] | TuningDatabase = "runs.db",
           target: Target | str | None = None, name: str | None = None, check: bool = True,
           compiler: str = "cc") -> Exported:
    """Write ``workload``'s best kernel in ``db`` (for ``target``, the host when None) to
    ``directory`` as ``libNAME.so``, ``NAME.h`` and ``NAME.o``; ``name``: the C function's
    name (default the workload's); ``check``: run the library once against the reference
    (a ``CodegenError`` if it differs); ``compiler``: the C compiler that links it."""
    tgt = resolve(target)
    if isinstance(db, str | os.PathLike):
        with Database(db, readonly=True) as opened:  # refuses a missing or empty file
            rec = _best(opened, workload, tgt, str(db))
    else:
        rec = _best(db, workload, tgt, getattr(db, "path", "the database"))
    program = rec.trace.replay(workload, target=tgt).program
    source = db if isinstance(db, str | os.PathLike) else getattr(db, "path", "a database")
    gflops = workload.flops / rec.latency_s / 1e9
    about = {"workload": workload.name, "structural_hash": workload.structural_hash,
             "flops": workload.flops, "record": rec.id, "database": str(source),
             "latency_s": rec.latency_s, "target": tgt.key, "probsched": _version()}
    comment = (f"{workload.name}, exported by probsched {_version()} from record {rec.id} "
               f"of {source}:\n{rec.latency_s * 1e3:.4g} ms ({gflops:.4g} GFLOP/s) measured "
               f"for {tgt.describe()}.\n\nThe workload:\n{workload.text()}")
    files = write_library(program, directory, target=tgt, name=name or workload.name,
                          about=about, comment=comment, compiler=compiler)
    err = verify(load_library(files.library), workload) if check else float("nan")
    return Exported(files, rec, workload.name, err)


def _best(db: TuningDatabase, workload: Workload, target: Target, where: str) -> Record:
    best = db.best(workload, target=target.key)
    if not best:
        raise ProbschedError(f"{where} has no correct record of workload {workload.name} "
                             f"with these parameters for target {target.key} (tune it "
                             "first, with the same --param and --target values)")
    return best[0]


def verify(kernel: Kernel, workload: Workload, seed: int = 0) -> float:
    """Run ``kernel`` on random inputs of ``workload`` and compare with the numpy reference
    within the rounding-error tolerances the runner uses; the largest absolute error, or a
    ``CodegenError`` saying where it differs."""
    inputs = random_inputs(workload, seed=seed)
    outs = kernel(*inputs)
    refs = reference(workload, *inputs)
    bounds = error_bounds(workload, *inputs)
    tols = [(tolerance(r, b, s.dtype) + TINY).astype(r.dtype)
            if np.issubdtype(r.dtype, np.floating) else np.zeros(r.shape)
            for r, b, s in zip(refs, bounds, workload.outputs, strict=True)]
    ok, err, why = check_outputs(outs, refs, names=[s.name for s in workload.outputs],
                                 tolerances=tols)
    if not ok:
        raise CodegenError(f"the exported kernel of {workload.name} differs from the "
                           f"reference: {why}")
    return err


def load_kernel(path: str | os.PathLike[str]) -> Kernel:
    """Load a kernel library written by :func:`export` (``libNAME.so``) with ctypes, no
    compiler or LLVM involved: ``kernel(*inputs)`` returns the outputs as numpy arrays (input
    shapes and dtypes checked), ``kernel.signature`` names the arguments.

    >>> import probsched as ps
    >>> ps.load_kernel("nowhere/libgmm.so")
    Traceback (most recent call last):
    ...
    probsched.errors.ProbschedError: nowhere/libgmm.so: no such kernel library
    """
    return load_library(path)


def _version() -> str:
    try:
        return importlib.metadata.version("probsched")
    except importlib.metadata.PackageNotFoundError:
        return "(source tree)"


# ---------------------------------------------------------------- the command


def add_command(sub: argparse._SubParsersAction) -> None:
    """``probsched export``'s arguments, on the CLI's subcommands."""
    p = sub.add_parser("export", help="write the best kernel of a workload in a tuning "
                       "database as a shared library with a C header (and its object file)")
    p.add_argument("file", help="the .sched file")
    p.add_argument("--db", required=True, help="tuning database")
    p.add_argument("--workload", help="workload name (needed when the file has several)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="workload parameters, as given to tune")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder for libNAME.so, NAME.h and NAME.o (made if missing)")
    p.add_argument("--name", help="the C function's name (default: the workload's)")
    p.add_argument("--target", default=None, metavar="NAME",
                   help="the target whose records to export (default the host)")
    p.add_argument("--no-check", action="store_true",
                   help="skip running the library once against the reference")
    p.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    from ..lang import load
    from .run import parse_params

    try:
        wl = load(args.file).workload(args.workload, **parse_params(args.param))
    except ProbschedError as exc:
        text = str(exc) if exc.location is not None else f"{args.file}: error: {exc}"
        print(text, file=sys.stderr)
        return 1
    done = export(wl, args.output, db=args.db, target=args.target, name=args.name,
                  check=not args.no_check)
    f = done.files
    rec = done.record
    print(f"exported {done.workload} (record {rec.id}, {rec.latency_s * 1e3:.4g} ms) as "
          f"{done.name}():")
    for path in (f.library, f.header, f.object):
        print(f"  {path}")
    if not args.no_check:
        print(f"checked against the reference: max abs error {done.max_abs_err:.3g}")
    folder = Path(args.output)
    print(f"use: cc prog.c -I {folder} -L {folder} -l{done.name} -Wl,-rpath,{folder.resolve()}")
    return 0

__all__ = ["Exported", "export", "load_kernel", "verify"]
