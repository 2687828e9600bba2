"""The refinement run's report: pass@1 (and pass@k) per round as JSON, per-task outcomes, a markdown table and a plot.

The files' schema is agent/eval_report.py (which `semcoder serve --reports` reads too)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.eval_report import REPORT_FILE, TASKS_FILE, RoundScore, RunReport, TaskOutcome, reported_ks

__all__ = ["RoundScore", "RunReport", "markdown_table", "plot_rounds", "write_report"]


def markdown_table(report: RunReport) -> str:
    ks = reported_ks(report)
    lines = [f"# {report.benchmark}: {report.model} ({report.n_tasks} tasks, n={report.n_samples_per_task}, "
             f"feedback {report.feedback}, {report.dialect} dialect)", "",
             "| round | pass@1 (%) | " + "".join(f"pass@{k} (%) | " for k in ks) + "solved tasks | refined samples |",
             "|---:|---:|" + "---:|" * len(ks) + "---:|---:|"]
    lines += [f"| {r.round} | {100 * r.pass_at_1:.2f} | " + "".join(f"{100 * r.pass_at_k[k]:.2f} | " for k in ks)
              + f"{r.solved_tasks} | {r.refined_samples} |" for r in report.rounds]
    return "\n".join(lines) + "\n"


def plot_rounds(report: RunReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5, 3.5))
    rounds = [r.round for r in report.rounds]
    axes.plot(rounds, [100 * r.pass_at_1 for r in report.rounds], marker="o", label="pass@1")
    for k in reported_ks(report):
        axes.plot(rounds, [100 * r.pass_at_k[k] for r in report.rounds], marker="o", label=f"pass@{k}")
    axes.set_xticks(rounds)
    axes.set_xlabel("refinement round")
    axes.set_ylabel("pass@k (%)")
    if reported_ks(report):
        axes.legend()
    axes.set_title(f"{report.benchmark}: {report.model} ({report.feedback})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def write_report(report: RunReport, out_dir: Path, tasks: list[TaskOutcome] | None = None) -> None:
    """report.json, report.md, the plot, and (given the per-task outcomes) tasks.jsonl: agent/eval_report.py."""
    if tasks is not None:
        (out_dir / TASKS_FILE).write_text("".join(task.model_dump_json() + "\n" for task in tasks))
    (out_dir / REPORT_FILE).write_text(json.dumps(report.model_dump(), indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_table(report))
    plot_rounds(report, out_dir / "pass_at_1.png")
