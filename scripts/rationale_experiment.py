"""Which rationale format teaches execution reasoning best (issue #21): one pretrained ~98M Llama, one SFT arm per
format with the same steps over the same programs, each scored on held-out execution prediction and CRUXEval-I/O,
compared pairwise task by task (exact McNemar) over two data seeds and two training seeds.

Formats (`semcoder data rationale`): monologue (SemCoder's NL monologue), next (NExT-style inline states), cwm
(CWM-style raw frames), none (the answer alone). Phases, in order; each is resumable and a rerun skips what is done:

`data` (here, on the CPU machine; it needs no GPU): a PyX run (`--pyx DIR`, or `--generated N [--source DIR]` to
synthesize one with `semcoder data pyx`) is split once with a fixed seed (`semcoder data split --seed
--heldout-seed`): the held-out programs are the same for every arm and seed, so every answer pairs up. Each data
seed then draws --train-fraction of the remaining programs (only the training draw varies), writes them as a PyX
folder and runs `semcoder data rationale` on it: one file per format, same programs, same order. Writes --data
(a folder) and --data.tgz (carry that one to the device; its table prints the size, a few MB for 2000
programs).

`pretrain` (GPU, once): the model learns Python from source for --pretrain-seconds.

`sft` (GPU): formats x data seeds x training seeds arms (16 by default), every arm exactly the same steps of the
same packed rows (--sft-steps, else --sft-seconds of one GPU at the pretraining's measured speed), --per-gpu
processes sharing each GPU, all GPUs used. An arm whose final checkpoint holds the planned steps is skipped;
--arms (name patterns, e.g. '*_d0_*') and --max-seconds (no arm starts after it) split the phase over commands.

`evaluate` (GPU): --servers-per-gpu vLLM servers at once per GPU (each with its own fixed KV cache, eager mode),
`semcoder eval cruxeval-i|cruxeval-o` on CRUXEval and on the held-out set (input and output prediction) against
each; every per-task answer and verdict is kept (evals/ARM/BENCH/tasks.jsonl). --arms and --max-seconds as above.

`report` (anywhere): per arm and per format (pooled over seeds), pass@1 with Wilson and bootstrapped 95% intervals,
exact McNemar p-values for every format pair on every benchmark (pooled over seed runs and per run), tokens
trained, rationale tokens per record; report.md, report.json and report.png in --out, the table printed.

Every device phase writes PHASE_table.txt and PHASE_bundle.tgz (logs, and results/: the files `report` reads) to
--out; `report --work DIR` also runs on an unpacked results/ folder. `--size tiny --device cpu --server cpu` runs
the whole orchestration on a CPU (tests/training/test_rationale_experiment.py).

On the GPU machine stage the vLLM pack and `source scripts/gpu_env.sh` first (`semcoder train` and `semcoder eval`
import pydantic, which only that pack brings there; experiment_common.preflight checks it).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import random
import re
import shutil
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from queue import Queue
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiment_common import (
    ROOT,
    ROW_TOKENS,
    SEMCODER,
    SIZES,
    eval_job,
    finish,
    gpu_count,
    logs,
    preflight,
    pretrain,
    read_json,
    run_logged,
    servers,
    sft_run,
    steps_for,
)

FORMATS = ("monologue", "next", "cwm", "none")
# name -> (`semcoder eval` benchmark, on the held-out file)
BENCHMARKS = {"heldout-o": ("cruxeval-o", True), "heldout-i": ("cruxeval-i", True),
              "cruxeval-o": ("cruxeval-o", False), "cruxeval-i": ("cruxeval-i", False)}
HELDOUT = "heldout/exec_o.jsonl"
# The results `report` reads, relative to --work; they travel back in every phase's bundle.
RESULT_GLOBS = ["plan.json", "data_stats.json", "pretrain/summary.json", "sft/*/arm.json", "sft/*/summary.json",
                "sft/*/metrics.jsonl", "evals/*/*/report.json", "evals/*/*/tasks.jsonl"]


@dataclass(frozen=True, order=True)
class Arm:
    fmt: str
    data_seed: int
    train_seed: int

    @property
    def name(self) -> str:
        return f"{self.fmt}_d{self.data_seed}_t{self.train_seed}"

    @property
    def run(self) -> str:
        """The seed run: arms of different formats with the same run saw the same programs in the same order."""
        return f"d{self.data_seed}t{self.train_seed}"


def int_list(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item.strip()]


def name_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["data", "pretrain", "sft", "evaluate", "report"])
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "rationale-data",
                        help="the data phase's folder (it also writes FOLDER.tgz); other phases read either")
    parser.add_argument("--work", type=Path, default=Path("/tmp/semcoder-rationale"), help="checkpoints, results")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "runs" / "rationale")))
    parser.add_argument("--formats", type=name_list, default=list(FORMATS))
    parser.add_argument("--data-seeds", type=int_list, default=[0, 1])
    parser.add_argument("--train-seeds", type=int_list, default=[0, 1])
    data = parser.add_argument_group("data")
    data.add_argument("--pyx", type=Path, default=None, help="an existing `semcoder data pyx` folder")
    data.add_argument("--generated", type=int, default=0, help="synthesize a PyX run of N generated programs")
    data.add_argument("--source", type=Path, default=None, help="with --generated: a corpus of .py files too")
    data.add_argument("--holdout", type=int, default=200, help="held-out programs (the same for every arm)")
    data.add_argument("--heldout-seed", type=int, default=0)
    data.add_argument("--train-fraction", type=float, default=0.8, help="of the other programs, per data seed")
    data.add_argument("--data-workers", type=int, default=None, help="sandbox workers of `semcoder data pyx`")
    device = parser.add_argument_group("device")
    device.add_argument("--size", choices=sorted(SIZES), default="gpu")
    device.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    device.add_argument("--gpus", type=int, default=None, help="GPUs to use (default: all visible)")
    device.add_argument("--server", choices=["vllm", "cpu"], default="vllm")
    device.add_argument("--arms", type=name_list, default=["*"], help="only arms matching these name patterns")
    device.add_argument("--max-seconds", type=float, default=None, help="start no arm or server wave after this")
    train = parser.add_argument_group("pretrain and sft")
    train.add_argument("--pretrain-seconds", type=float, default=120.0)
    train.add_argument("--corpus-mb", type=float, default=100.0, help="Python source read for pretraining")
    train.add_argument("--sft-seconds", type=float, default=15.0, help="each arm's share of one GPU")
    train.add_argument("--sft-steps", type=int, default=None, help="steps per arm (default: from --sft-seconds)")
    train.add_argument("--per-gpu", type=int, default=4, help="SFT processes sharing one GPU")
    train.add_argument("--sft-compile", action="store_true", help="torch.compile each arm (minutes of start-up)")
    evaluate = parser.add_argument_group("evaluate")
    evaluate.add_argument("--benchmarks", type=name_list, default=list(BENCHMARKS))
    evaluate.add_argument("--servers-per-gpu", type=int, default=8)
    evaluate.add_argument("--kv-cache-gib", type=float, default=3.0, help="each vLLM server's KV cache")
    evaluate.add_argument("--crux-limit", type=int, default=None, help="only the first N CRUXEval tasks")
    evaluate.add_argument("--heldout-limit", type=int, default=None)
    # `semcoder data rationale` keeps rationales of up to 4000 characters (~1150 tokens): room for the longest.
    evaluate.add_argument("--max-tokens", type=int, default=1280, help="per generation (rationale + answer)")
    evaluate.add_argument("--workers", type=int, default=2, help="sandbox workers per eval")
    evaluate.add_argument("--eval-jobs", type=int, default=0,
                          help="evals running at once (0: all of a server wave's, so each server batches several)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="resamples for the report's intervals")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.formats) - set(FORMATS)) + sorted(set(args.benchmarks) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown formats or benchmarks: {unknown}")
    return args


# --- data (CPU machine) --------------------------------------------------------------------------------------


def rationale_data(args: argparse.Namespace, pyx_dir: Path, out: Path, log: Path) -> None:
    """The one call of `semcoder data rationale`: OUT/<format>.jsonl (same programs, same order, the SFT record
    shape) and OUT/manifest.json. The only place that knows that command's interface."""
    run_logged([*SEMCODER, "data", "rationale", str(pyx_dir), "--out", str(out), "--formats",
                ",".join(args.formats), *(["--workers", str(args.data_workers)] if args.data_workers else [])], log)


def source_pyx(args: argparse.Namespace) -> Path:
    if args.pyx is not None:
        return args.pyx
    if not args.generated:
        raise SystemExit("data: give --pyx DIR (a `semcoder data pyx` folder) or --generated N")
    out = args.work / "pyx"
    command = [*SEMCODER, "data", "pyx", "--generated", str(args.generated), "--out", str(out),
               *(["--source", str(args.source)] if args.source else []),
               *(["--workers", str(args.data_workers)] if args.data_workers else [])]
    run_logged(command, logs(args) / "data_pyx.log")
    return out


def draw(keys: list[str], fraction: float, seed: int) -> list[str]:
    """The data seed's training programs: a seeded draw of `fraction` of `keys` (sorted)."""
    count = max(1, round(fraction * len(keys)))
    return sorted(random.Random(seed).sample(sorted(keys), count))


def write_pyx_folder(target: Path, pyx: Path, split_train: Path, keep: set[str]) -> int:
    """A `semcoder data pyx`-shaped folder holding only the programs `keep` and their (leak-free) records."""
    from training.data.split import aligned_lines, load_programs
    from training.data.writer import atomic_lines

    if target.exists():
        shutil.rmtree(target)
    (target / "shards").mkdir(parents=True)
    programs = [p for p in load_programs(pyx).values() if p.key in keep]
    atomic_lines(target / "shards" / "programs-00000.jsonl", (p.model_dump_json() for p in programs))
    rows = [(line, meta) for line, meta in aligned_lines(split_train, "pyx") if meta.program in keep]
    for records, metas in ((target / "pyx.jsonl", target / "pyx.meta.jsonl"),
                           (target / "shards" / "pyx-00000.jsonl", target / "shards" / "pyx-00000.meta.jsonl")):
        atomic_lines(records, (line for line, _ in rows))
        atomic_lines(metas, (meta.model_dump_json() for _, meta in rows))
    return len(rows)


LABEL = re.compile(r" *# \[L\d+\]")
SHOWN = re.compile(r"PYTHON\]\n(.*?)\nassert f\(", re.S)


def normalized_code(code: str) -> str:
    """Code as prompts may show it: no line labels, one quote style, no trailing blanks."""
    return "\n".join(LABEL.sub("", line).rstrip() for line in code.replace("'", '"').strip().splitlines())


def shown_programs(record: dict[str, Any]) -> list[str]:
    """The programs an execution-prediction record's prompt shows (normalized)."""
    text = "\n".join(str(record.get(field) or "") for field in ("fwd_mnl", "bwd_mnl", "nl", "fault"))
    return [normalized_code(match) for match in SHOWN.findall(text)]


def leak_check(files: list[Path], heldout: Path) -> dict[str, Any]:
    """Records of `files` whose prompt shows a held-out program, and how many prompts showed a program at all."""
    held = {normalized_code(json.loads(line)["code"]) for line in heldout.read_text().splitlines() if line.strip()}
    leaked, checked = [], 0
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            shown = shown_programs(json.loads(line))
            checked += bool(shown)
            if held & set(shown):
                leaked.append(f"{path.name}:{number}")
    return {"records_showing_a_program": checked, "showing_a_held_out_program": leaked}


def count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def data_phase(args: argparse.Namespace) -> str:
    pyx = source_pyx(args)
    split = args.work / "split"
    run_logged([*SEMCODER, "data", "split", "--pyx", str(pyx), "--out", str(split), "--holdout", str(args.holdout),
                "--seed", str(args.heldout_seed)], logs(args) / "data_split.log")
    from training.data.split import aligned_lines

    held = read_json(split / "split.json")["held_out"]
    pool = sorted({meta.program for _, meta in aligned_lines(split / "train", "pyx")})
    if args.data.exists():
        shutil.rmtree(args.data)
    (args.data / "heldout").mkdir(parents=True)
    shutil.copy(split / HELDOUT, args.data / HELDOUT)
    shutil.copy(split / "split.json", args.data / "split.json")
    summary: dict[str, Any] = {"formats": args.formats, "data_seeds": args.data_seeds, "held_out": held,
                               "training_pool": len(pool), "seeds": {}}
    for seed in args.data_seeds:
        drawn = draw(pool, args.train_fraction, seed)
        if set(drawn) & set(held):
            raise SystemExit(f"seed {seed}: held-out programs among the drawn ones")  # split dropped them: a bug
        folder = args.work / f"pyx_seed{seed}"
        records = write_pyx_folder(folder, pyx, split / "train", set(drawn))
        out = args.data / f"seed{seed}"
        rationale_data(args, folder, out, logs(args) / f"data_rationale_seed{seed}.log")
        counts = {fmt: count_lines(out / f"{fmt}.jsonl") for fmt in args.formats}
        if len(set(counts.values())) != 1:
            raise SystemExit(f"seed {seed}: the formats hold different record counts {counts} (same programs, "
                             "same order expected from `semcoder data rationale`)")
        (out / "programs.json").write_text(json.dumps(drawn))
        leaks = leak_check([out / f"{fmt}.jsonl" for fmt in args.formats], args.data / HELDOUT)
        if leaks["showing_a_held_out_program"]:
            raise SystemExit(f"seed {seed}: held-out programs in training records: {leaks}")
        summary["seeds"][str(seed)] = {"programs": len(drawn), "pyx_records": records, "records": counts, **leaks}
    (args.data / "data.json").write_text(json.dumps(summary, indent=1))
    archive = args.data.with_name(args.data.name + ".tgz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(args.data, arcname=".")
    lines = [f"held out: {len(held)} programs (seed {args.heldout_seed}, shared by every arm); training pool "
             f"{len(pool)} programs", f"{'data seed':<10} {'programs':>9} {'records/format':>15} {'leaks':>6}"]
    for seed, stats in summary["seeds"].items():
        lines.append(f"{seed:<10} {stats['programs']:>9} {next(iter(stats['records'].values())):>15} "
                     f"{len(stats['showing_a_held_out_program']):>6}")
    lines.append(f"carry {archive} ({archive.stat().st_size / 1e6:.2f} MB) to the device")
    return "\n".join(lines)


def data_root(args: argparse.Namespace) -> Path:
    """The data phase's folder: --data itself, or --data.tgz unpacked once into --work (later calls need not
    carry it again)."""
    if args.data.is_dir():
        return args.data
    archive = args.data if args.data.suffix == ".tgz" else args.data.with_name(args.data.name + ".tgz")
    target = args.work / "data"
    if not archive.is_file() and not (target / "data.json").exists():
        raise SystemExit(f"no data at {args.data} (run the data phase, then carry its folder or .tgz)")
    if not (target / "data.json").exists():
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    return target


# --- sft -----------------------------------------------------------------------------------------------------


def all_arms(plan: dict[str, Any]) -> list[Arm]:
    return [Arm(fmt, ds, ts) for ds in plan["data_seeds"] for ts in plan["train_seeds"] for fmt in plan["formats"]]


def selected(args: argparse.Namespace, arms: list[Arm]) -> list[Arm]:
    return [arm for arm in arms if any(fnmatch.fnmatch(arm.name, pattern) for pattern in args.arms)]


def make_plan(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """Steps and arms, fixed by the first sft call (later calls reuse them: every arm trains the same steps)."""
    path = args.work / "plan.json"
    if path.exists():
        plan = read_json(path)
        if args.sft_steps and args.sft_steps != plan["steps"]:
            print(f"plan.json fixes {plan['steps']} steps per arm; --sft-steps {args.sft_steps} is ignored")
        return plan
    available = read_json(data / "data.json")
    formats = [fmt for fmt in args.formats if fmt in available["formats"]]
    seeds = [seed for seed in args.data_seeds if str(seed) in available["seeds"]]
    if not formats or not seeds:
        raise SystemExit(f"the data has formats {available['formats']} and seeds {list(available['seeds'])}")
    tokens_per_s = read_json(args.work / "pretrain" / "summary.json")["tokens_per_s"]
    steps = args.sft_steps or steps_for(args, args.sft_seconds, tokens_per_s)
    plan = {"steps": steps, "row_tokens": ROW_TOKENS[args.size], "formats": formats, "data_seeds": seeds,
            "train_seeds": args.train_seeds, "pretrain_tokens_per_s": tokens_per_s, "size": args.size}
    path.write_text(json.dumps(plan, indent=1))
    return plan


def arm_done(args: argparse.Namespace, arm: Arm, steps: int) -> bool:
    folder = args.work / "sft" / arm.name
    summary = folder / "summary.json"
    return (folder / "final" / "config.json").exists() and summary.exists() and read_json(summary)["steps"] == steps


def train_arm(args: argparse.Namespace, arm: Arm, data: Path, steps: int, gpu: int) -> dict[str, Any]:
    folder = args.work / "sft" / arm.name
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished arm starts over: its steps must be the plan's
    folder.mkdir(parents=True)
    records = data / f"seed{arm.data_seed}" / f"{arm.fmt}.jsonl"
    (folder / "arm.json").write_text(json.dumps({"format": arm.fmt, "data_seed": arm.data_seed,
                                                 "train_seed": arm.train_seed, "data": str(records), "steps": steps}))
    extra = [f"seed={arm.train_seed}", f"compile={str(args.sft_compile).lower()}"]
    if args.size == "gpu":
        extra += ["micro_batch_size=8", "gradient_accumulation_steps=2"]  # the same 16 rows, half the activations
    return sft_run(args, folder, [records], steps, gpu, logs(args) / f"sft_{arm.name}.log", extra)


def rationale_text(response: str) -> str | None:
    """What comes before the answer ('' for the answer-only format); None: no answer (not execution prediction)."""
    if "[ANSWER]" not in response:
        return None
    return response.rsplit("[ANSWER]", 1)[0].replace("[/MONOLOGUE]", "").strip()


def token_stats(args: argparse.Namespace, data: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """Per data seed and format: records, and response / rationale tokens per execution-prediction record
    (the pretrained model's tokenizer), with `semcoder data rationale`'s manifest as it wrote it."""
    path = args.work / "data_stats.json"
    if path.exists():
        return read_json(path)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(args.work / "pretrain" / "final"))

    def lengths(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    stats: dict[str, Any] = {}
    for seed in plan["data_seeds"]:
        folder = data / f"seed{seed}"
        manifest = folder / "manifest.json"
        stats[str(seed)] = {"manifest": read_json(manifest) if manifest.exists() else None, "formats": {}}
        for fmt in plan["formats"]:
            responses = [json.loads(line)["response"] for line in (folder / f"{fmt}.jsonl").read_text().splitlines()
                         if line.strip()]
            rationales = [text for text in map(rationale_text, responses) if text is not None]
            exec_responses = [r for r in responses if rationale_text(r) is not None]
            stats[str(seed)]["formats"][fmt] = {
                "records": len(responses), "exec_records": len(rationales),
                "rationale_tokens_per_record": mean(lengths(rationales)),
                "response_tokens_per_record": mean(lengths(exec_responses)),
            }
    path.write_text(json.dumps(stats, indent=1))
    return stats


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def sft_phase(args: argparse.Namespace) -> str:
    data = data_root(args)
    if not (args.work / "pretrain" / "summary.json").exists():
        raise SystemExit("no pretrained model in --work: run the pretrain phase first on this machine")
    plan = make_plan(args, data)
    token_stats(args, data, plan)
    steps, started = plan["steps"], time.perf_counter()
    arms = selected(args, all_arms(plan))
    todo = [arm for arm in arms if not arm_done(args, arm, steps)]
    kept = f"{len(arms) - len(todo)} of {len(arms)} selected arms already trained (kept)"
    print(f"{steps} steps of {plan['row_tokens']:,} row tokens per arm; {kept}; training {len(todo)}", flush=True)
    slots: Queue[int] = Queue()
    for slot in range(gpu_count(args) * max(1, args.per_gpu)):
        slots.put(slot % gpu_count(args))
    deferred: list[str] = []

    def job(arm: Arm) -> None:
        gpu = slots.get()
        try:
            if args.max_seconds is not None and time.perf_counter() - started > args.max_seconds:
                deferred.append(arm.name)
                return
            train_arm(args, arm, data, steps, gpu)
        finally:
            slots.put(gpu)

    with ThreadPoolExecutor(slots.qsize()) as pool:
        for future in [pool.submit(job, arm) for arm in todo]:
            future.result()
    lines = [f"{'arm':<20} {'steps':>6} {'tokens':>12} {'final loss':>10}"]
    for arm in arms:
        summary = args.work / "sft" / arm.name / "summary.json"
        if arm_done(args, arm, steps):
            s = read_json(summary)
            lines.append(f"{arm.name:<20} {s['steps']:>6} {s['tokens']:>12,} {s['final_loss']:>10.4f}")
        else:
            lines.append(f"{arm.name:<20} {'-':>6} (not trained yet: run sft again)")
    lines.append(f"{kept}; wall {time.perf_counter() - started:.0f} s"
                 + (f"; {len(deferred)} arms left for the next call (--max-seconds)" if deferred else ""))
    return "\n".join(lines)


# --- evaluate ------------------------------------------------------------------------------------------------


def eval_dir(args: argparse.Namespace, arm: Arm, bench: str) -> Path:
    return args.work / "evals" / arm.name / bench


def eval_done(args: argparse.Namespace, arm: Arm, bench: str) -> bool:
    return (eval_dir(args, arm, bench) / "report.json").exists() and (eval_dir(args, arm, bench) / "tasks.jsonl").exists()


def run_eval(args: argparse.Namespace, arm: Arm, port: int, bench: str, heldout: Path) -> None:
    benchmark, held = BENCHMARKS[bench]
    eval_job(args, arm.name, port, benchmark, eval_dir(args, arm, bench), heldout if held else None,
             args.heldout_limit if held else args.crux_limit)


def evaluate_phase(args: argparse.Namespace) -> str:
    heldout = data_root(args) / HELDOUT
    if not (args.work / "plan.json").exists():
        raise SystemExit(f"no plan.json in {args.work}: run the pretrain and sft phases first on this machine")
    plan = read_json(args.work / "plan.json")
    arms = selected(args, all_arms(plan))
    todo = [arm for arm in arms if not all(eval_done(args, arm, bench) for bench in args.benchmarks)]
    untrained = [arm.name for arm in todo if not arm_done(args, arm, plan["steps"])]
    if untrained:
        raise SystemExit(f"arms not trained yet: {untrained} (run the sft phase, or leave them out with --arms)")
    wave = max(1, args.servers_per_gpu) * gpu_count(args)
    started, healthy, deferred = time.perf_counter(), [], 0
    for index in range(0, len(todo), wave):
        if args.max_seconds is not None and time.perf_counter() - started > args.max_seconds:
            deferred = len(todo) - index
            break
        group = todo[index:index + wave]
        models = {arm.name: args.work / "sft" / arm.name / "final" for arm in group}
        jobs = [(arm, bench) for bench in args.benchmarks for arm in group if not eval_done(args, arm, bench)]
        with servers(args, models, 8100 + index) as (ports, healthy_s), \
                ThreadPoolExecutor(args.eval_jobs or len(jobs)) as pool:
            healthy.append(healthy_s)
            for future in [pool.submit(run_eval, args, arm, ports[arm.name], bench, heldout) for arm, bench in jobs]:
                future.result()
    lines = [f"{'arm':<20} " + " ".join(f"{bench:>11}" for bench in args.benchmarks)]
    for arm in arms:
        cells = []
        for bench in args.benchmarks:
            path = eval_dir(args, arm, bench) / "report.json"
            cells.append(f"{100 * read_json(path)['rounds'][0]['pass_at_1']:>10.2f}%" if eval_done(args, arm, bench)
                         else f"{'-':>11}")
        lines.append(f"{arm.name:<20} " + " ".join(cells))
    lines.append(f"pass@1 greedy; {len(healthy)} server waves of up to {wave} (healthy after "
                 f"{', '.join(f'{s:.0f}' for s in healthy) or '-'} s); wall {time.perf_counter() - started:.0f} s"
                 + (f"; {deferred} arms left for the next call (--max-seconds)" if deferred else ""))
    return "\n".join(lines)


# --- report --------------------------------------------------------------------------------------------------


def wilson(passed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(runs: list[dict[str, bool]], resamples: int, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean pass rate over seed runs, resampling tasks (the tasks all runs share)."""
    tasks = sorted(set.intersection(*(set(run) for run in runs))) if runs else []
    if not tasks:
        return 0.0, 0.0
    per_task = [mean([float(run[task]) for run in runs]) for task in tasks]
    rng = random.Random(seed)
    means = sorted(mean(rng.choices(per_task, k=len(per_task))) for _ in range(resamples))
    return means[int(0.025 * (resamples - 1))], means[int(0.975 * (resamples - 1))]


def load_results(args: argparse.Namespace, plan: dict[str, Any]) -> dict[tuple[Arm, str], dict[str, bool]]:
    from paired_ablation import solved_in_run  # pydantic: imported once the preflight has run

    results = {}
    for arm in all_arms(plan):
        for bench in BENCHMARKS:
            if eval_done(args, arm, bench):
                results[(arm, bench)] = solved_in_run(eval_dir(args, arm, bench))
    return results


def pooled(results: dict[tuple[Arm, str], dict[str, bool]], fmt: str, bench: str, runs: list[str]) -> dict[str, bool]:
    """One format's verdicts on one benchmark over the given seed runs, keyed RUN/TASK (pairs across formats)."""
    out = {}
    for (arm, name), solved in results.items():
        if arm.fmt == fmt and name == bench and arm.run in runs:
            out.update({f"{arm.run}/{task}": ok for task, ok in solved.items()})
    return out


def paired(a: dict[str, bool], b: dict[str, bool]) -> dict[str, Any] | None:
    """Exact McNemar (scripts/paired_ablation.py's test) on the tasks both sides answered."""
    from evals.paired import compare_solved

    shared = set(a) & set(b)
    if not shared:
        return None
    return compare_solved({t: a[t] for t in shared}, {t: b[t] for t in shared}).model_dump()


def training_stats(args: argparse.Namespace, arm: Arm) -> dict[str, Any] | None:
    folder = args.work / "sft" / arm.name
    if not (folder / "summary.json").exists():
        return None
    summary = read_json(folder / "summary.json")
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()] \
        if (folder / "metrics.jsonl").exists() else []
    return {"steps": summary["steps"], "tokens": summary["tokens"], "final_loss": summary["final_loss"],
            "loss_tokens": sum(m.get("target_tokens", 0) for m in metrics)}


def build_report(args: argparse.Namespace) -> dict[str, Any]:
    plan = read_json(args.work / "plan.json")
    results = load_results(args, plan)
    data_stats = read_json(args.work / "data_stats.json") if (args.work / "data_stats.json").exists() else {}
    arms = all_arms(plan)
    runs = sorted({arm.run for arm in arms})
    benches = [b for b in BENCHMARKS if any(name == b for _, name in results)]
    report: dict[str, Any] = {"plan": plan, "benchmarks": benches, "arms": {}, "formats": {}, "pairs": [],
                              "orderings": {}, "data_stats": data_stats}
    for arm in arms:
        entry: dict[str, Any] = {"format": arm.fmt, "run": arm.run, "training": training_stats(args, arm),
                                 "scores": {}}
        for bench in benches:
            solved = results.get((arm, bench))
            if solved is not None:
                passed = sum(solved.values())
                entry["scores"][bench] = {"tasks": len(solved), "passed": passed,
                                          "pass_at_1": passed / len(solved) if solved else 0.0,
                                          "wilson95": wilson(passed, len(solved))}
        report["arms"][arm.name] = entry
    for fmt in plan["formats"]:
        mine = [arm for arm in arms if arm.fmt == fmt]
        trained = [s for s in (report["arms"][a.name]["training"] for a in mine) if s]
        rationale = [data_stats[str(seed)]["formats"][fmt] for seed in plan["data_seeds"] if str(seed) in data_stats]
        entry = {"runs": len(mine), "scores": {},
                 "steps": sorted({s["steps"] for s in trained}),
                 "tokens_trained": mean([s["tokens"] for s in trained]),
                 "loss_tokens": mean([s["loss_tokens"] for s in trained]),
                 "rationale_tokens_per_record": mean([r["rationale_tokens_per_record"] for r in rationale]),
                 "rationale_chars_per_record": manifest_mean(data_stats, plan["data_seeds"], fmt, "rationale_chars"),
                 "response_tokens_per_record": mean([r["response_tokens_per_record"] for r in rationale])}
        for bench in benches:
            per_run = [results[(arm, bench)] for arm in mine if (arm, bench) in results]
            if not per_run:
                continue
            rates = [sum(r.values()) / len(r) for r in per_run if r]
            all_pooled = pooled(results, fmt, bench, runs)
            entry["scores"][bench] = {
                "runs": len(per_run), "mean": mean(rates), "min": min(rates), "max": max(rates),
                "seed_sd": statistics_sd(rates), "bootstrap95": bootstrap(per_run, args.bootstrap),
                "wilson95_pooled": wilson(sum(all_pooled.values()), len(all_pooled)),
            }
        report["formats"][fmt] = entry
    for bench in benches:
        for a, b in combinations(plan["formats"], 2):
            row = {"benchmark": bench, "a": a, "b": b, "pooled": paired(pooled(results, a, bench, runs),
                                                                        pooled(results, b, bench, runs)),
                   "per_run": {run: paired(pooled(results, a, bench, [run]), pooled(results, b, bench, [run]))
                               for run in runs}}
            report["pairs"].append(row)
        report["orderings"][bench] = {}
        for run in runs:
            rates = {arm.fmt: mean([float(ok) for ok in results[(arm, bench)].values()])
                     for arm in arms if arm.run == run and (arm, bench) in results}
            order = sorted(rates, key=lambda fmt: -rates[fmt])
            report["orderings"][bench][run] = "".join(
                (f" {'=' if rates[fmt] == rates[order[i - 1]] else '>'} " if i else "") + fmt
                for i, fmt in enumerate(order))
    return report


def manifest_mean(data_stats: dict[str, Any], seeds: list[int], fmt: str, field: str) -> float | None:
    """A per-format mean that `semcoder data rationale` wrote in its manifest, averaged over data seeds."""
    values = []
    for seed in seeds:
        manifest = (data_stats.get(str(seed)) or {}).get("manifest") or {}
        value = ((manifest.get("per_format") or {}).get(fmt) or {}).get(field)
        if isinstance(value, dict) and isinstance(value.get("mean"), int | float):
            values.append(value["mean"])
    return mean(values) if values else None


def statistics_sd(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    centre = mean(values)
    return math.sqrt(sum((v - centre) ** 2 for v in values) / (len(values) - 1))


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def markdown(report: dict[str, Any]) -> str:
    plan, benches = report["plan"], report["benchmarks"]
    lines = [f"# Rationale formats: {len(plan['formats'])} formats x {len(plan['data_seeds'])} data seeds x "
             f"{len(plan['train_seeds'])} training seeds, {plan['steps']} SFT steps of {plan['row_tokens']:,} row "
             "tokens per arm", "",
             "pass@1 (%) per format: mean over seed runs [bootstrap 95% over tasks] (min-max over runs); "
             "tokens are means per arm; rationale tokens per execution-prediction record (pretrained tokenizer).", "",
             "| format | " + " | ".join(benches) + " | steps | tokens trained | loss tokens | rationale tok/record "
             "| rationale chars/record |", "|---|" + "---:|" * (len(benches) + 5)]
    for fmt, entry in report["formats"].items():
        cells = []
        for bench in benches:
            s = entry["scores"].get(bench)
            cells.append("-" if s is None else f"{pct(s['mean'])} [{pct(s['bootstrap95'][0])}, "
                         f"{pct(s['bootstrap95'][1])}] ({pct(s['min'])}-{pct(s['max'])})")
        steps = ",".join(map(str, entry["steps"])) or "-"
        lines.append(f"| {fmt} | " + " | ".join(cells) + f" | {steps} | {entry['tokens_trained']:,.0f} | "
                     f"{entry['loss_tokens']:,.0f} | {entry['rationale_tokens_per_record']:.1f} | "
                     + ("-" if entry["rationale_chars_per_record"] is None else
                        f"{entry['rationale_chars_per_record']:.0f}") + " |")
    lines += ["", "## Pairwise: exact McNemar p (only A / only B solved), pooled over seed runs, then per run", "",
              "| benchmark | A vs B | pooled | " + " | ".join(sorted({r for p in report["pairs"] for r in p["per_run"]}))
              + " |", "|---|---|---:|" + "---:|" * len({r for p in report["pairs"] for r in p["per_run"]})]
    for pair in report["pairs"]:
        def cell(result: dict[str, Any] | None) -> str:
            return "-" if result is None else f"{result['p_value']:.3g} ({result['only_a']}/{result['only_b']})"

        lines.append(f"| {pair['benchmark']} | {pair['a']} vs {pair['b']} | {cell(pair['pooled'])} | "
                     + " | ".join(cell(pair["per_run"][run]) for run in sorted(pair["per_run"])) + " |")
    lines += ["", "## Ordering per seed run (best first)", "", "| benchmark | run | ordering |", "|---|---|---|"]
    for bench, per_run in report["orderings"].items():
        for run, order in per_run.items():
            lines.append(f"| {bench} | {run} | {order} |")
    lines += ["", "## Arms", "", "| arm | " + " | ".join(benches) + " | steps | tokens | final loss |",
              "|---|" + "---:|" * (len(benches) + 3)]
    for name, arm in report["arms"].items():
        cells = []
        for bench in benches:
            s = arm["scores"].get(bench)
            cells.append("-" if s is None else f"{pct(s['pass_at_1'])} [{pct(s['wilson95'][0])}, "
                         f"{pct(s['wilson95'][1])}] n={s['tasks']}")
        t = arm["training"]
        train = "- | - | -" if t is None else f"{t['steps']} | {t['tokens']:,} | {t['final_loss']:.4f}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {train} |")
    lines.append("")
    lines.append("Intervals: Wilson 95% per arm; per format a 95% bootstrap over tasks of the mean over seed runs.")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    from matplotlib import pyplot

    benches, formats = report["benchmarks"], list(report["formats"])
    figure, axes = pyplot.subplots(figsize=(1.8 + 1.6 * len(benches), 4))
    width = 0.8 / max(1, len(formats))
    for index, fmt in enumerate(formats):
        xs, heights, low, high = [], [], [], []
        for position, bench in enumerate(benches):
            score = report["formats"][fmt]["scores"].get(bench)
            if score is None:
                continue
            xs.append(position + (index - (len(formats) - 1) / 2) * width)
            heights.append(100 * score["mean"])
            low.append(100 * (score["mean"] - score["bootstrap95"][0]))
            high.append(100 * (score["bootstrap95"][1] - score["mean"]))
            runs = [100 * a["scores"][bench]["pass_at_1"] for a in report["arms"].values()
                    if a["format"] == fmt and bench in a["scores"]]
            axes.scatter([xs[-1]] * len(runs), runs, color="black", s=8, zorder=3)
        axes.bar(xs, heights, width, yerr=[low, high], capsize=3, label=fmt)
    axes.set_xticks(range(len(benches)), benches)
    axes.set_ylabel("pass@1 (%)")
    axes.set_title("rationale formats: mean over seed runs, 95% bootstrap; dots: runs")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return True


def report_phase(args: argparse.Namespace) -> str:
    if not (args.work / "plan.json").exists():
        raise SystemExit(f"no plan.json in {args.work}: run sft first, or give --work an unpacked results/ folder")
    report = build_report(args)
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (args.out / "report.md").write_text(text)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    drawn = plot(report, args.out / "report.png")
    return text + ("" if drawn else "\n(no plot: matplotlib is not installed)\n")


# --- main ----------------------------------------------------------------------------------------------------


def result_files(args: argparse.Namespace) -> list[tuple[Path, str]]:
    """What `report` reads, for the bundle: results/<path relative to --work>."""
    return [(path, f"results/{path.relative_to(args.work)}") for pattern in RESULT_GLOBS
            for path in sorted(args.work.glob(pattern))]


PHASES = {"data": data_phase, "pretrain": lambda args: pretrain_table(pretrain(args)), "sft": sft_phase,
          "evaluate": evaluate_phase, "report": report_phase}


def pretrain_table(summary: dict[str, Any]) -> str:
    return (f"pretrained: {summary['steps']} steps, {summary['tokens']:,} tokens, {summary['tokens_per_s']:,.0f} "
            f"tokens/s, final loss {summary['final_loss']:.4f}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.phase in ("pretrain", "sft", "evaluate"):
        preflight(args, serve=args.phase == "evaluate")
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        table = PHASES[args.phase](args)
    except Exception:
        finish(args, f"{args.phase} failed; see the logs in {args.phase}_bundle.tgz", result_files(args))
        raise
    finish(args, table, result_files(args))


if __name__ == "__main__":
    main()
