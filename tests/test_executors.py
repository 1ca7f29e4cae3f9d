"""Which runs share a process (and, with --fused, a model): no framework needed."""

from bench.executors import groups
from bench.spec import RunSpec, load_study, optimizer_params


def spec(framework="torch", lr=0.1, schedule="constant", seed=0, optimizer="sgd"):
    return RunSpec(study="s", framework=framework, model="mlp", dataset="digits", optimizer=optimizer_params({"name": optimizer}),
                   schedule={"name": schedule}, lr=lr, batch_size=16, epochs=1, seed=seed)


def test_fused_groups_only_what_differs_in_lr_or_schedule_and_only_where_a_fused_backend_exists():
    specs = [spec(lr=0.1), spec(lr=0.01), spec(lr=0.1, schedule="cosine"), spec(lr=0.1, seed=1),
             spec(lr=0.1, optimizer="adam"), spec("keras", lr=0.1), spec("keras", lr=0.01)]
    fused = [[s.run_id for s in g] for g in groups(specs, fused=True)]
    assert fused == [[specs[0].run_id, specs[1].run_id, specs[2].run_id], [specs[3].run_id], [specs[4].run_id],
                     [specs[5].run_id], [specs[6].run_id]]
    assert [len(g) for g in groups(specs)] == [1] * len(specs)


def test_a_warm_start_chain_shares_one_process_in_the_originals_order():
    sweep = load_study("lr-sweep").runs(["torch", "keras"], seeds=2)
    work = groups(list(reversed(sweep)))
    chains = [g for g in work if g[0].protocol == "warm_start"]
    assert len(chains) == 4 and all([s.lr for s in g] == [0.1, 0.01, 0.001, 0.0001] for g in chains)
    assert all(len({(s.framework, s.seed) for s in g}) == 1 for g in chains)
    assert sum(len(g) == 1 for g in work) == 16  # the fresh runs each alone


def test_a_resumed_sweep_starts_its_longest_chain_first():
    chains = [s for s in load_study("lr-sweep").runs(["jax"], seeds=3) if s.protocol == "warm_start"]
    pending = [s for s in chains if s.stage >= {0: 3, 1: 2, 2: 0}[s.seed]]  # seed 0 at 3 of 4 stages, seed 1 at 2
    assert [(g[0].seed, len(g)) for g in groups(pending)] == [(2, 4), (1, 2), (0, 1)]


def _raise_in_a_framework():
    raise RuntimeError("an error deep in a framework\nwith its long traceback-like second line")


def test_what_goes_wrong_in_a_process_of_its_own_is_one_line_naming_it():
    import os

    import pytest

    from bench.errors import BenchError
    from bench.executors import in_own_process

    assert in_own_process("a sum", sum, [1, 2, 3]) == 6
    with pytest.raises(BenchError, match=r"^torch's range test failed: RuntimeError: an error deep in a framework$"):
        in_own_process("torch's range test", _raise_in_a_framework)
    with pytest.raises(BenchError, match=r"^paddle's range test: its process died with exit code 3 \(a crash or an "
                                         r"out-of-memory kill\)"):
        in_own_process("paddle's range test", os._exit, 3)


def _print_then_fail():
    import os

    os.write(2, b"F0000 what a framework's C++ wrote\n")  # below Python: as TensorFlow's and Paddle's logs are
    raise RuntimeError("boom")


def test_what_a_framework_prints_stays_off_the_terminal_and_a_failure_ends_with_it(capfd):
    import pytest

    from bench.errors import BenchError
    from bench.executors import in_own_process

    with pytest.raises(BenchError, match=r"^x failed: RuntimeError: boom \(its log ends: F0000 what a framework's C\+\+ "
                                         r"wrote\)$"):
        in_own_process("x", _print_then_fail)
    assert capfd.readouterr() == ("", "")


def test_a_stop_kills_the_process_of_its_own_at_once():
    """SIGTERM to `bench find-lr` was once silent for 41 s: the driver waited for the range test to finish."""
    import multiprocessing
    import signal
    import time

    import pytest

    from bench.executors import in_own_process

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 3.0)  # the process is up and sleeping by then
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            in_own_process("a long wait", time.sleep, 60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - start < 10
    assert multiprocessing.active_children() == []


def _interrupted() -> str:
    import os
    import signal
    import time

    os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C reaches every process of the terminal's group
    time.sleep(0.2)
    return "went on"


def test_a_run_process_leaves_ctrl_c_to_its_driver():
    """An idle worker once printed its own KeyboardInterrupt traceback after the driver's stop line."""
    import signal

    from bench.executors import in_own_process

    # as in a terminal: a shell running the tests in the background (CI) ignores SIGINT, and a process spawned
    # from here would inherit that; a handler here leaves the spawned one Python's own
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert in_own_process("a run", _interrupted) == "went on"
    finally:
        signal.signal(signal.SIGINT, previous)
