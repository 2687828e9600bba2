"""`semcoder data pyx|pyxr|split|strip-monologue|rationale`: build SemCoder's PyX / PyX-R data, hold out, ablate."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.models import MODEL_URL_HELP
from sandbox import SandboxError
from sandbox.executor import executor_options
from sandbox.trace_render import CwmCaps
from training.data.ablation import strip_monologues, strip_summary
from training.data.loaders import DataError
from training.data.pyx_pipeline import PyXConfig, run_pyx
from training.data.pyxr_pipeline import PyXRConfig, run_pyxr
from training.data.rationale import RATIONALE_FORMATS, RationaleConfig, build_rationales, rationale_summary
from training.data.split import SplitConfig, split_pyx, split_summary
from training.data.stats import ChunkStats
from training.data.teacher import TeacherConfig


@click.group("data")
def data_group() -> None:
    """Build PyX (programs, traces, monologues) and PyX-R (debugging rationales) training data."""


def _teacher_options(command):
    options = [
        click.option("--teacher", "teacher_url", multiple=True, metavar="URL",
                     help=f"OpenAI-compatible endpoint of a teacher model. {MODEL_URL_HELP}"),
        click.option("--teacher-model", default="teacher", show_default=True, help="Teacher model name."),
        click.option("--samples", default=4, show_default=True, type=click.IntRange(1),
                     help="Teacher samples per monologue/rationale (rejection sampling)."),
        click.option("--no-fallback", is_flag=True,
                     help="Drop items the teacher gets wrong instead of using the trace-written version."),
        click.option("--workers", default=None, type=click.IntRange(1),
                     help="Sandbox workers [default: all cores; with --executor ray, per node: its CPUs]."),
        click.option("--seed", default=0, show_default=True, type=int),
        click.option("--backend", default="local", show_default=True, type=click.Choice(["local", "docker"])),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _teacher(url: tuple[str, ...], model: str, samples: int, no_fallback: bool) -> TeacherConfig | None:
    if not url:
        return None
    return TeacherConfig(url=url, model=model, samples=samples, fallback_to_trace=not no_fallback)


def _progress_bar(console: Console, label: str):
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[kept]} records"),
                   TimeElapsedColumn(), console=console)
    task = bar.add_task(label, total=None, kept=0)

    def update(done: int, total: int, stats: ChunkStats) -> None:
        bar.update(task, completed=done, total=total, kept=sum(stats.records.values()))

    return bar, update


@data_group.command("pyx")
@click.option("--source", type=click.Path(exists=True, path_type=Path), default=None,
              help="Corpus: a directory of .py files (e.g. the standard library).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output directory (resumable).")
@click.option("--generated", default=0, show_default=True, type=click.IntRange(0),
              help="Programs from the random CRUXEval-style generator.")
@click.option("--limit", default=None, type=click.IntRange(1), help="Most candidate programs in all.")
@click.option("--shard-size", default=200, show_default=True, type=click.IntRange(1))
@_teacher_options
@executor_options
def pyx_command(source, out, generated, limit, shard_size, teacher_url, teacher_model, samples, no_fallback,
                workers, seed, backend, executor) -> None:
    """PyX: executable programs with NL descriptions, verified inputs, forward and backward monologues."""
    if source is None and generated == 0:
        raise click.UsageError("give --source DIR, --generated N, or both")
    config = PyXConfig(out=out, source=source, generated=generated, limit=limit, shard_size=shard_size,
                       teacher=_teacher(teacher_url, teacher_model, samples, no_fallback), workers=workers,
                       seed=seed, backend=backend, executor=executor)
    console = Console(stderr=True)
    bar, update = _progress_bar(console, "PyX shards")
    try:
        with bar:
            _, summary = run_pyx(config, update)
    except (SandboxError, DataError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary)


@data_group.command("pyxr")
@click.option("--pyx", "pyx_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Output directory of `semcoder data pyx` (its verified programs are the input).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output directory (resumable).")
@click.option("--limit", default=None, type=click.IntRange(1), help="Most programs to take.")
@_teacher_options
@executor_options
def pyxr_command(pyx_dir, out, limit, teacher_url, teacher_model, samples, no_fallback, workers, seed,
                 backend, executor) -> None:
    """PyX-R: bugs injected into PyX programs, the failing test, a rationale and the verified fix."""
    config = PyXRConfig(pyx=pyx_dir, out=out, limit=limit, workers=workers, seed=seed, backend=backend,
                        executor=executor,
                        teacher=_teacher(teacher_url, teacher_model, samples, no_fallback))
    console = Console(stderr=True)
    bar, update = _progress_bar(console, "PyX-R shards")
    try:
        with bar:
            _, summary = run_pyxr(config, update)
    except (SandboxError, DataError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary)


@data_group.command("split")
@click.option("--pyx", "pyx_dir", required=True, type=click.Path(path_type=Path),
              help="Output directory of `semcoder data pyx`.")
@click.option("--pyxr", "pyxr_dir", default=None, type=click.Path(path_type=Path),
              help="Output directory of `semcoder data pyxr` made from it (without: no PyX-R training file).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Writes train/, heldout/, split.json.")
@click.option("--holdout", required=True, type=click.IntRange(1), help="Programs to hold out.")
@click.option("--seed", default=0, show_default=True, type=int)
def split_command(pyx_dir, pyxr_dir, out, holdout, seed) -> None:
    """Hold out N programs as a CRUXEval-O-style file; write training files without any record of them."""
    config = SplitConfig(pyx=pyx_dir, pyxr=pyxr_dir, out=out, holdout=holdout, seed=seed)
    try:
        report = split_pyx(config)
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(split_summary(report, out))


@data_group.command("strip-monologue")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
def strip_monologue_command(source, target) -> None:
    """The monologue ablation: SOURCE's PyX records with every forward/backward monologue emptied."""
    try:
        report = strip_monologues(source, target)
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(strip_summary(report))


def _formats(ctx, param, value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in RATIONALE_FORMATS]
    if unknown or not names:
        raise click.BadParameter(f"{', '.join(unknown) or 'nothing'}: expected a comma-separated list of "
                                 f"{', '.join(RATIONALE_FORMATS)}")
    return list(dict.fromkeys(names))


@data_group.command("rationale")
@click.argument("pyx_dir", type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Writes FORMAT.jsonl per format and "
              "manifest.json.")
@click.option("--formats", default=",".join(RATIONALE_FORMATS), show_default=True, callback=_formats,
              help="Rationale formats, comma-separated.")
@click.option("--programs", "programs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Directory with shards/programs-*.jsonl [default: PYX_DIR, or the folder of a "
              "record file].")
@click.option("--max-rationale-chars", default=4_000, show_default=True, type=click.IntRange(1),
              help="A record whose rationale is longer in any format is dropped from every file.")
@click.option("--cwm-value-chars", default=200, show_default=True, type=click.IntRange(4),
              help="CWM frames: longest repr of one value.")
@click.option("--cwm-line-visits", default=20, show_default=True, type=click.IntRange(1),
              help="CWM frames: frames kept per line per call (a long loop's later ones are left out).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1), help="Sandbox workers.")
@click.option("--backend", default="local", show_default=True, type=click.Choice(["local", "docker"]))
def rationale_command(pyx_dir, out, formats, programs_dir, max_rationale_chars, cwm_value_chars, cwm_line_visits,
                      workers, backend) -> None:
    """One SFT file per rationale format (monologue, next, cwm, none) for the same programs and answers.

    PYX_DIR is a `semcoder data pyx` output directory or a record file with its .meta.jsonl sidecar; each
    monologue record's call is traced again in the sandbox and rendered in every format.
    """
    config = RationaleConfig(pyx=pyx_dir, programs=programs_dir, out=out, formats=formats,
                             max_rationale_chars=max_rationale_chars, workers=workers, backend=backend,
                             cwm=CwmCaps(value_chars=cwm_value_chars, line_visits=cwm_line_visits))
    try:
        manifest = build_rationales(config)
    except (SandboxError, DataError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(rationale_summary(manifest, out))
