"""PyX and PyX-R synthesis: executable programs, real traces, monologues and debugging rationales.

    from training.data import PyXConfig, run_pyx, PyXRConfig, run_pyxr, read_pyx, read_pyxr

`run_pyx` turns a corpus of .py files and/or generated CRUXEval-style programs into SemCoder's PyX
records (`{"nl", "fwd_mnl", "bwd_mnl", "response"}`); `run_pyxr` injects bugs into the verified
programs and writes PyX-R records (`{"fault", "response"}`). Both are resumable and sharded; the
CLI is `semcoder data pyx|pyxr`. See each module's docstring for its stage. `split_pyx` holds programs out
as a CRUXEval-format file with leak-free training files (`semcoder data split`); `strip_monologues` is the
monologue ablation (`semcoder data strip-monologue`).
"""

from training.data.ablation import strip_monologues
from training.data.loaders import DataError, read_programs, read_pyx, read_pyxr, to_dataset
from training.data.models import Example, Origin, Program, RecordMeta
from training.data.pyx_pipeline import PyXConfig, run_pyx
from training.data.pyxr_pipeline import PyXRConfig, run_pyxr
from training.data.split import SplitConfig, split_pyx
from training.data.teacher import TeacherConfig

__all__ = [
    "DataError",
    "Example",
    "Origin",
    "Program",
    "PyXConfig",
    "PyXRConfig",
    "RecordMeta",
    "SplitConfig",
    "TeacherConfig",
    "read_programs",
    "read_pyx",
    "read_pyxr",
    "run_pyx",
    "run_pyxr",
    "split_pyx",
    "strip_monologues",
    "to_dataset",
]
