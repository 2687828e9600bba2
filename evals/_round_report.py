"""The refinement run's report: pass@1 per round as JSON, a markdown table and a plot."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field


class RoundScore(BaseModel):
    round: int = Field(description="0: the generated solutions; k: after k refinement rounds.")
    pass_at_1: float = Field(description="Fraction of samples passing, averaged over tasks.")
    solved_tasks: int = Field(description="Tasks with every sample passing.")
    refined_samples: int = Field(description="Samples sent to the model for refinement in this round.")


class RunReport(BaseModel):
    benchmark: str
    model: str
    n_tasks: int
    n_samples_per_task: int
    feedback: str
    dialect: str = Field("semcoder", description="How the model was prompted: semcoder (raw prompts) or chat.")
    rounds: list[RoundScore]


def markdown_table(report: RunReport) -> str:
    lines = [f"# {report.benchmark}: {report.model} ({report.n_tasks} tasks, n={report.n_samples_per_task}, "
             f"feedback {report.feedback}, {report.dialect} dialect)", "",
             "| round | pass@1 (%) | solved tasks | refined samples |", "|---:|---:|---:|---:|"]
    lines += [f"| {r.round} | {100 * r.pass_at_1:.2f} | {r.solved_tasks} | {r.refined_samples} |"
              for r in report.rounds]
    return "\n".join(lines) + "\n"


def plot_rounds(report: RunReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5, 3.5))
    rounds = [r.round for r in report.rounds]
    axes.plot(rounds, [100 * r.pass_at_1 for r in report.rounds], marker="o")
    axes.set_xticks(rounds)
    axes.set_xlabel("refinement round")
    axes.set_ylabel("pass@1 (%)")
    axes.set_title(f"{report.benchmark}: {report.model} ({report.feedback})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def write_report(report: RunReport, out_dir: Path) -> None:
    (out_dir / "report.json").write_text(json.dumps(report.model_dump(), indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_table(report))
    plot_rounds(report, out_dir / "pass_at_1.png")
