"""`bench`: lrbench's studies run in each installed framework, side by side. Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from backends import DEFAULT_FRAMEWORKS, FRAMEWORKS, REFERENCE_FRAMEWORK, check_frameworks, check_runs, installed

from .data import check_data_dir, data_available, load_dataset
from .errors import BenchError, DataError
from .executors import EXECUTORS, check_device, connect_ray, groups, in_own_process, run_local, run_ray, thread_budget
from .find_lr import DEFAULTS
from .progress import Display, Work, label
from .provenance import claim_folder, framework_notes, record
from .results import (
    DENIED,
    FINISHED,
    SAID,
    ResultStore,
    atomic_write,
    check_writable,
    read_results,
    study_folders,
    to_csv,
)
from .schedules import lr_moves_per_step
from .spec import MAX_EPOCHS, PROTOCOLS, StudySpec, bundled_figures, load_study, study_names

DEFAULT_OUT = "bench-results"
RESUMES = "finished runs are saved, run the same command again to resume"  # what a stop keeps, per command
REDRAW = "draw every figure again (default: only those whose rows changed)"
WRITES_AT_END = "nothing was written (it writes once every framework has finished): run the same command again"
FRAMEWORKS_HELP = f"comma-separated (default: each installed one of {', '.join(DEFAULT_FRAMEWORKS)})"


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stopped like Ctrl-C (workers killed, finished runs kept), exit 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


RECEIVED: list[int] = []  # the stop signals this command received: Ray's waits re-raise them as a plain KeyboardInterrupt


def _stop(signum, frame):
    RECEIVED.append(signum)
    raise Stopped(signum)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    RECEIVED.clear()
    previous = {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}
    try:
        return _main(args)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _main(args) -> int:
    SAID.clear()
    try:
        return args.func(args)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder of the results that cannot be written or is not what it should be
        where = _culprit(e.filename2 or e.filename or "results")  # a rename names its target second
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"bench: error: no space left on the device writing {where}: free space and run "
                  f"the same command again; finished runs are kept", file=sys.stderr)
        elif e.errno in DENIED:
            print(f"bench: error: cannot write {where}: permission denied ({e.strerror}): make the "
                  f"folder writable, or copy it and run the command on the copy", file=sys.stderr)
        else:  # a folder where lrbench keeps a file, or a file where it keeps a folder, ...
            print(f"bench: error: {where}: {e.strerror or type(e).__name__}: it is not what lrbench keeps there; move "
                  f"it aside (or restore it) and run the command again; finished runs are kept", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = e.signum if isinstance(e, Stopped) else RECEIVED[-1] if RECEIVED else signal.SIGINT
        print(f"bench: stopped by {signal.Signals(signum).name}; {args.on_stop}", file=sys.stderr)
        return 128 + signum


def _culprit(path) -> str:
    """The path an OSError is about: for a path under a plain file (NotADirectoryError), that file."""
    path = Path(path)
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return str(parent)
    return str(path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description=__doc__)
    p.set_defaults(on_stop=RESUMES)
    sub = p.add_subparsers(required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="the bundled studies with their data's state, and the frameworks installed")
    listing.add_argument("--data-dir", type=Path, help="dataset folder (default: $BENCH_DATA_DIR, then ~/.cache/lrbench)")
    listing.set_defaults(func=cmd_list)

    run_options = argparse.ArgumentParser(add_help=False)
    run_options.add_argument("--frameworks", help=FRAMEWORKS_HELP)
    run_options.add_argument("--quick", action="store_true", help="the study's small preset: minutes on a laptop CPU")
    run_options.add_argument("--seeds", type=int, help="number of seeds (0..N-1; default: the study's)")
    run_options.add_argument("--epochs", type=int, help="epochs per run (default: the study's)")
    run_options.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run_options.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), help=f"results folder (default {DEFAULT_OUT})")
    run_options.add_argument("--data-dir", type=Path, help="dataset folder (default: $BENCH_DATA_DIR, then ~/.cache/lrbench)")
    run_options.add_argument("--jobs", type=int, default=1,
                             help="runs at once, each in a worker process of its framework (default 1)")
    run_options.add_argument("--fresh-process", action="store_true",
                             help="start a process for every run (default: a worker trains its framework's runs in turn)")
    run_options.add_argument("--threads", type=int, help="threads per run (default: the cores divided by --jobs; 1 on Ray)")
    run_options.add_argument("--fused", action="store_true",
                             help=f"{' and '.join(n for n, f in FRAMEWORKS.items() if f.fusable)}: train the runs "
                                  "that differ only in lr or schedule as one model")
    run_options.add_argument("--executor", choices=EXECUTORS, default="local",
                             help="local processes (default) or one Ray task per run")
    run_options.add_argument("--redraw", action="store_true", help=REDRAW)
    run_options.add_argument("--ray-address", help="join this Ray cluster (HOST:PORT, ray://HOST:PORT or auto; "
                                                   "implies --executor ray; default: start Ray on this machine)")

    run = sub.add_parser("run", parents=[run_options], help="run one study (a name or a .toml path)")
    run.add_argument("study")
    run.add_argument("--no-plot", action="store_true",
                     help="the runs only: draw the figures later with bench plot OUT (a sweep run in parts)")
    run.add_argument("--protocol", choices=PROTOCOLS, help="only the study's runs of this protocol (lr-sweep: fresh or "
                                                           "warm_start), in a folder of their own")
    run.set_defaults(func=cmd_run)
    every = sub.add_parser("all", parents=[run_options], help="run every bundled study whose data is there, then the report")
    every.set_defaults(func=cmd_all)

    perf = sub.add_parser("perf", help="the runner against a hand-written loop in each framework (LeNet, MNIST)")
    perf.add_argument("--frameworks", help=FRAMEWORKS_HELP)
    perf.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    perf.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch (default 3)")
    perf.add_argument("--rounds", type=int, default=2, help="times the ways take turns (default 2)")
    perf.add_argument("--train-size", type=int, help="MNIST training examples an epoch (default: all 60,000)")
    perf.add_argument("--threads", type=int, help="threads (default: all cores)")
    perf.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), help="writes OUT/perf/perf-DEVICE.csv")
    perf.add_argument("--data-dir", type=Path, help="folder holding mnist/ (default: $BENCH_DATA_DIR, then the cache)")
    perf.set_defaults(func=cmd_perf, on_stop=WRITES_AT_END)

    find = sub.add_parser("find-lr", help="the LR range test on a study's model, data and optimizer, per framework")
    find.add_argument("study")
    find.add_argument("--frameworks", help=FRAMEWORKS_HELP)
    find.add_argument("--min-lr", type=float, default=DEFAULTS["min_lr"], help=f"first lr (default {DEFAULTS['min_lr']:g})")
    find.add_argument("--max-lr", type=float, default=DEFAULTS["max_lr"], help=f"last lr (default {DEFAULTS['max_lr']:g})")
    find.add_argument("--steps", type=int, default=DEFAULTS["steps"], help=f"steps from min to max (default {DEFAULTS['steps']})")
    find.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    find.add_argument("--threads", type=int, help="threads (default: all cores)")
    find.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), help="writes OUT/STUDY-find-lr/")
    find.add_argument("--data-dir", type=Path, help="dataset folder (default: $BENCH_DATA_DIR, then ~/.cache/lrbench)")
    find.set_defaults(func=cmd_find_lr, on_stop=WRITES_AT_END)

    for name, func, helptext in (("plot", cmd_plot, "the figures again, from a results folder's CSVs"),
                                 ("report", cmd_report, "report.md and report.html of a results folder")):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("dir", type=Path)
        cmd.add_argument("--redraw", action="store_true", help=REDRAW)
        cmd.set_defaults(func=func)
    return p


def cmd_list(args) -> int:
    check_data_dir(args.data_dir)
    print("studies (data here, or not here: what is missing, where it goes, where it comes from):")
    for name in study_names():
        study = load_study(name)
        missing = data_available(study.dataset, args.data_dir)
        state = "here" if missing is None else "not here"
        print(f"  {name:<12} {study.dataset:<14} data {state:<9} {study.description}")
        if missing is not None:
            print(f"  {'':<12} {missing}")
    print("frameworks:")
    for name, framework in FRAMEWORKS.items():
        state = "installed" if installed(name) else f'not installed (pip install -e ".[{framework.extra}]")'
        print(f"  {name:<12} {state}")
    return 0


def _frameworks(args) -> list[str]:
    if args.frameworks is not None:
        given = [f.strip() for f in args.frameworks.split(",") if f.strip()]
        if not given:
            raise BenchError(f"--frameworks {args.frameworks!r} names no framework: give some of {', '.join(FRAMEWORKS)} "
                             f"(comma-separated), or drop --frameworks for every installed one")
        names = list(dict.fromkeys(given))
        if len(names) < len(given):
            print(f"note: --frameworks names {', '.join(n for n, k in Counter(given).items() if k > 1)} more than once; "
                  f"each runs once", file=sys.stderr)
        check_frameworks(names)
        return names
    names = [name for name in DEFAULT_FRAMEWORKS if installed(name)]
    if not names:
        raise BenchError('no framework is installed: pip install -e ".[all]" (torch, Keras, Paddle and JAX), or ".[torch]" alone')
    return names


COUNTS = ("seeds", "epochs", "jobs", "threads", "rounds", "train_size")  # options that count something: at least 1
# and at most these: a typo must not start a sweep of a billion
MOST = {"seeds": 1000, "threads": 1024, "jobs": 1024, "train_size": 60000, "epochs": MAX_EPOCHS}


def _check_options(args) -> None:
    for name in COUNTS:
        value = getattr(args, name, None)  # each command has its own subset
        if value is not None and value < 1:
            raise BenchError(f"--{name} must be at least 1, got {value}")
        if value is not None and value > MOST.get(name, value):
            raise BenchError(f"--{name} must be at most {MOST[name]}, got {value}")
    cores = os.cpu_count() or 1
    on_this_machine = getattr(args, "executor", "local") == "local" and not getattr(args, "ray_address", None)
    if on_this_machine and (args.threads or 0) > cores:
        raise BenchError(f"--threads {args.threads} is more than this machine's {cores} cores: threads beyond the cores "
                         f"only wait for each other; give at most {cores}")
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise BenchError(f"--data-dir {args.data_dir} is not a folder: give the folder that holds mnist/, fashion-mnist/, ...")


def _check_device(frameworks: list[str], device: str) -> None:
    if device == "cuda":
        check_device(frameworks, device)


def _check_executor(args) -> None:
    """Join (or start) Ray before any run, so a missing Ray or a dead address is one line."""
    if args.ray_address:  # an address means Ray
        args.executor = "ray"
    if args.executor == "ray":
        connect_ray(args.ray_address)


def _check_batches(study: StudySpec, args, train_examples: int) -> None:
    for spec in study.runs(["-"], quick=args.quick, epochs=args.epochs):
        n = min(spec.train_size or train_examples, train_examples)
        if spec.batch_size > n:
            raise BenchError(f"study {study.name!r}: batch_size {spec.batch_size} is larger than its {n} training "
                             f"examples: lower batch_size or raise train_size")


class Plan:
    """One study's runs as this command will run them, and the work each one is (for the overall progress)."""

    def __init__(self, study: StudySpec, frameworks: list[str], args, train_examples: int):
        self.study, self.frameworks = study, frameworks
        self.specs = _distinct(study.runs(frameworks, quick=args.quick, seeds=args.seeds, device=args.device,
                                          epochs=args.epochs))
        protocol = getattr(args, "protocol", None)
        if protocol:
            protocols = sorted({s.protocol for s in self.specs})
            if protocol not in protocols:
                raise BenchError(f"study {study.name!r} has no {protocol} runs: its protocols are {', '.join(protocols)}; "
                                 f"drop --protocol or choose one of them")
            self.specs = [s for s in self.specs if s.protocol == protocol]
        check_runs(self.specs)
        self.store = ResultStore(args.out, folder_name(study, args))
        listed = {m["run_id"] for m in self.store.manifests() if m["status"] in FINISHED}  # checked under the lock
        self.work = {s.run_id: Work(s.framework, s.model, s.epochs, min(s.train_size or train_examples, train_examples),
                                    s.batch_size, lr_moves_per_step(s.schedule))
                     for s in self.specs if s.run_id not in listed}
        self.labels = {s.run_id: label(s) for s in self.specs}


def folder_name(study: StudySpec, args) -> str:
    """The study's folder under --out, named for what the command runs: the study's name, then -quick, -N-epochs
    (--epochs other than the study's) and -PROTOCOL (--protocol), so that no two of them share a folder."""
    as_written = {s.epochs for s in study.runs(["-"], quick=args.quick)}
    return "-".join([study.name, *(["quick"] if args.quick else []),
                     *([f"{args.epochs}-epochs"] if args.epochs and {args.epochs} != as_written else []),
                     *([args.protocol] if getattr(args, "protocol", None) else [])])


def _run_study(plan: Plan, args, display: Display) -> Counter:
    """Run what is missing of one study, then plot it (unless --no-plot). Returns status counts."""
    study, specs, store = plan.study, plan.specs, plan.store
    counts: Counter = Counter()
    with store.lock():
        claim_folder(store, record(study, specs, _shaping_options(args)))
        done = store.repair()
        for note in framework_notes(store, plan.frameworks):
            display.say(note)
        pending = [s for s in specs if s.run_id not in done]
        counts["skipped (already done)"] = len(specs) - len(pending)
        if args.quick:
            display.say(study.quick_banner())
        display.say(f"{study.name}: {len(pending)} of {len(specs)} runs to do -> {store.dir}")
        epochs = {s.run_id: s.epochs for s in pending}
        for outcome in _execute(pending, args, store, lambda e: display.epoch(e, epochs[e.run_id])):
            store.save_run(outcome.rows, outcome.manifest, outcome.weights, outcome.log)
            counts[outcome.manifest["status"]] += 1
            display.finished(outcome.manifest)
        if not getattr(args, "no_plot", False):
            _plot(store.dir, {study.name: study.figures}, args.redraw)
    return counts


def _distinct(specs: list) -> list:
    """The runs, each once: configs that expand to the same run (a config repeated) are folded, with a note."""
    unique = list({s.run_id: s for s in specs}.values())
    if len(unique) < len(specs):
        print(f"note: {len(specs) - len(unique)} runs repeat another config of the study exactly; each runs once",
              file=sys.stderr)
    return unique


def _shaping_options(args) -> str:
    """The command's options that change what the runs are (seeds and frameworks only add runs)."""
    return " ".join([*(["--quick"] if args.quick else []), *([f"--epochs {args.epochs}"] if args.epochs else []),
                     *([f"--protocol {args.protocol}"] if getattr(args, "protocol", None) else []),
                     f"--device {args.device}"])


def _execute(specs, args, store: ResultStore, on_epoch):
    """The runs' outcomes as they finish, their epochs to ``on_epoch`` (local workers tell them); a warm-start
    chain goes on from the network its finished stages left."""
    work = groups(specs, args.fused)
    starts = {g[0].run_id: store.chain_start(g[0]) for g in work if g[0].stage}
    if args.executor == "ray":
        return run_ray(work, args.data_dir, args.threads, args.ray_address, starts)
    return run_local(work, args.data_dir, args.threads, _jobs(args, len(work)), fresh=args.fresh_process,
                     starts=starts, on_epoch=on_epoch)


def _jobs(args, groups: int) -> int:
    """Runs at once: --jobs, at most one per group of runs; on Ray, as many as it fits (counted as --jobs)."""
    return max(1, min(args.jobs, groups))


def _plot(folder: Path, figures_for: dict[str, list[str]], redraw: bool) -> list[Path]:
    from .plots import plot_folder

    read_results(folder)  # one clear line when there is nothing to plot
    return plot_folder(folder, figures_for, redraw)


def _summary(name: str, counts: Counter) -> str:
    return f"{name}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()) if n)


def cmd_run(args) -> int:
    study = load_study(args.study)
    _check_options(args)
    data = load_dataset(study.dataset, args.data_dir)  # present and intact (or downloaded) before any run
    _check_batches(study, args, len(data.train_y))
    check_writable(args.out)
    frameworks = _frameworks(args)
    _check_device(frameworks, args.device)
    _check_executor(args)
    plan = Plan(study, frameworks, args, len(data.train_y))
    display = Display(plan.work, plan.labels, _jobs(args, len(plan.work)))
    try:
        counts = _run_study(plan, args, display)
    finally:
        display.close()
    print(_summary(study.name, counts))
    figures = f"bench plot {args.out} draws its figures" if args.no_plot else "its figures are in figures/"
    print(f"results: {plan.store.dir}/ ({figures}); next: bench report {args.out} (report.md and report.html)")
    return 1 if counts["failed"] else 0


def cmd_all(args) -> int:
    _check_options(args)
    check_writable(args.out)
    frameworks = _frameworks(args)
    _check_device(frameworks, args.device)
    _check_executor(args)
    plans, skipped = [], []
    for name in study_names():  # every study checked and planned before the first run
        study = load_study(name)
        try:
            data = load_dataset(study.dataset, args.data_dir)  # present and intact, or downloaded if it can be had
        except DataError as e:
            print(f"{name}: skipped: {e}")
            skipped.append({"study": name, "reason": str(e)})
            continue
        _check_batches(study, args, len(data.train_y))
        plans.append(Plan(study, frameworks, args, len(data.train_y)))
    if not plans:
        raise BenchError("no study could run: put the datasets where the messages above say, or pass --data-dir")
    work = {run: w for plan in plans for run, w in plan.work.items()}
    display = Display(work, {run: text for plan in plans for run, text in plan.labels.items()}, _jobs(args, len(work)))
    failed = 0
    try:
        for plan in plans:
            counts = _run_study(plan, args, display)
            display.say(_summary(plan.study.name, counts), sys.stdout)
            failed += counts["failed"]
    finally:
        display.close()
    from .report import SKIPPED, write_report

    atomic_write(args.out / SKIPPED, to_csv(skipped, ["study", "reason"]))  # every time: no stale names

    print(_report_line(write_report(args.out, replot=False, say=print)))  # figures were drawn after each study's runs
    return 1 if failed else 0


def cmd_perf(args) -> int:
    from tabulate import tabulate

    from .perf import run_perf

    _check_options(args)
    load_dataset("mnist", args.data_dir)  # present and intact before any timing
    check_writable(args.out)
    frameworks = _frameworks(args)
    _check_device(frameworks, args.device)
    rows = run_perf(frameworks, args.device, args.epochs, args.rounds, args.data_dir, args.threads, args.train_size)
    path = args.out / "perf" / f"perf-{args.device}.csv"
    atomic_write(path, to_csv(rows, list(rows[0])))
    columns = ["framework", "device", "threads", "way", "median_epoch_seconds", "runner_over_hand", "over_runner"]
    print(tabulate([[r[c] for c in columns] for r in rows], headers=columns))
    print(path)
    return 0


def cmd_find_lr(args) -> int:
    from tabulate import tabulate

    from .find_lr import CHUNK, FAILED, MANIFEST, SMOOTHING, STOP, compare, range_spec, range_test, to_rows_csv
    from .plots import plot_find_lr

    study = load_study(args.study)
    _check_options(args)
    if not 0 < args.min_lr < args.max_lr or not math.isfinite(args.max_lr):
        raise BenchError(f"--min-lr {args.min_lr:g} and --max-lr {args.max_lr:g}: need 0 < min-lr < max-lr")
    if args.steps < 2:
        raise BenchError(f"--steps must be at least 2, got {args.steps}")
    load_dataset(study.dataset, args.data_dir)  # present and intact (or downloaded) before any run
    check_writable(args.out)
    frameworks = _frameworks(args)
    _check_device(frameworks, args.device)
    specs = [range_spec(study, framework, args.min_lr, args.max_lr, args.steps, args.device) for framework in frameworks]
    check_runs(specs)  # what a framework refuses, before any range test
    rows, failed, ran = [], [], []
    for framework, spec in zip(frameworks, specs):  # one after the other, each in a process of its own
        try:
            steps, what = in_own_process(f"{framework}'s range test", range_test, spec, args.data_dir,
                                       thread_budget(1, args.threads))
        except BenchError as e:  # one framework failing leaves the others' comparison
            print(f"bench: {e}; the other frameworks go on without it", file=sys.stderr)
            failed.append({"framework": framework, "error": str(e)})
            continue
        rows += steps
        ran.append(what)
        print(f"{framework}: {what['steps_run']} of {args.steps} steps" + (" (stopped: the loss climbed)" if
              what["stopped_early"] else ""), file=sys.stderr)
    if not rows:
        raise BenchError(f"no framework's range test ran ({failed[0]['error']}); nothing written")
    frameworks = list(dict.fromkeys(r["framework"] for r in rows))
    folder = args.out / f"{study.name}-find-lr"
    args.on_stop = f"{folder} may hold this test's files in part: run the same command again to write them whole"
    df = to_rows_csv(rows)
    atomic_write(folder / "find-lr.csv", df.to_csv(index=False))
    table = compare(df, frameworks[0] if REFERENCE_FRAMEWORK not in frameworks else REFERENCE_FRAMEWORK)
    atomic_write(folder / "suggestions.csv", table.to_csv(index=False))
    atomic_write(folder / FAILED, to_csv(failed, ["framework", "error"]))  # the report names them; none: a header
    atomic_write(folder / MANIFEST, json.dumps({"min_lr": args.min_lr, "max_lr": args.max_lr, "steps": args.steps,
                                                "frameworks": ran}, indent=1))  # last: what the files above hold
    figure = plot_find_lr(df, study.name, folder / "figures")
    print(f"LR range test, {study.name}: lr x{(args.max_lr / args.min_lr) ** (1 / (args.steps - 1)):.4g} per step from "
          f"{args.min_lr:g} to {args.max_lr:g}; loss smoothed (EMA {SMOOTHING}); stopped once above {STOP:g}x its minimum "
          f"(checked every {CHUNK} steps).\nSuggested: steepest = where the smoothed loss falls fastest per decade of lr; "
          f"minimum / 10 = a tenth of the lr at its lowest.")
    print(tabulate(_terminal_table(table, len(frameworks)), headers="keys", showindex=False, floatfmt=".4g"))
    for fw, why in zip(table["framework"], table["clear minimum"]):
        if why != "yes":
            print(f"{fw}: {why}; its suggestions are not a recommendation")
    print(figure)
    return 0


def _terminal_table(table, frameworks: int):
    """suggestions.csv for a terminal: "clear minimum" says yes or no (its why is printed below the table), the lowest
    smoothed loss is where "minimum rests on" ends, and one framework gets no columns comparing it with itself."""
    shown = table.assign(**{"clear minimum": ["yes" if why == "yes" else "no (below)" for why in table["clear minimum"]]})
    shown = shown.drop(columns="lowest smoothed loss")
    return shown.loc[:, :"clear minimum"] if frameworks == 1 else shown


def cmd_plot(args) -> int:
    if not args.dir.is_dir():
        raise BenchError(f"{args.dir} is not a folder: give a results folder (e.g. {DEFAULT_OUT})")
    from .report import find_lr_figure

    tests = sorted(p.parent for p in args.dir.glob("*/find-lr.csv"))
    paths = _plot(args.dir, bundled_figures(), args.redraw) if study_folders(args.dir) or not tests else []
    for path in paths + [f for f in map(find_lr_figure, tests) if f]:  # and each LR range test's
        print(path)
    return 0


def cmd_report(args) -> int:
    from .report import write_report

    if not args.dir.is_dir():
        raise BenchError(f"{args.dir} is not a folder: give a results folder (e.g. {DEFAULT_OUT})")
    print(_report_line(write_report(args.dir, redraw=args.redraw, say=print)))
    return 0


def _report_line(md: Path) -> str:
    return f"report: {md} and {md.with_suffix('.html')} (one self-contained page: open it in a browser)"


if __name__ == "__main__":
    sys.exit(main())
