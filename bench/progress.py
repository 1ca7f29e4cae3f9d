"""Progress on the terminal: a bar per run (epoch, loss, ETA) that degrades to one plain line per epoch off a
TTY, and the whole command's bar after each run (runs done of all, elapsed, time left). The whole command's
bar is a line of its own because each run's bar is drawn by its worker process: two processes cannot share
a terminal line."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    def __init__(self, spec):
        protocol = "" if spec.protocol == "fresh" else f" {spec.protocol}"
        self.label = (f"{spec.study} {spec.framework} {spec.model} {spec.optimizer_label} {spec.schedule_label} "
                      f"lr={spec.lr:g} seed={spec.seed}{protocol}")
        self.total = spec.epochs
        self.start = time.perf_counter()
        tty = sys.stderr.isatty()
        self.bar = tqdm(total=spec.epochs, desc=self.label, unit="epoch", file=sys.stderr, leave=True) if tty else None

    def epoch(self, epoch: int, train_loss: float, val_acc: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{train_loss:.4f}", val_acc=f"{val_acc:.4f}", refresh=False)
            self.bar.update(1)
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / epoch * (self.total - epoch)
        print(f"[{self.label}] epoch {epoch}/{self.total} loss {train_loss:.4f} val_acc {val_acc:.4f} eta {eta:.0f}s",
              file=sys.stderr, flush=True)

    def close(self, status: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(status)
            self.bar.close()
        elif status != "done":
            print(f"[{self.label}] {status}", file=sys.stderr, flush=True)


BAR = 22  # characters of the whole command's bar


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{seconds:02d}s"


class Overall:
    """The whole command's position: runs done of all it will run, across studies. Time left comes from the
    work left, a run's work being its epochs times its training examples (runs of a study differ by those,
    and studies by their datasets). Shown on a terminal only: a log has the per-run lines."""

    def __init__(self, work: dict[str, float]):
        self.work, self.left = work, dict(work)
        self.start = time.perf_counter()
        self.show = sys.stderr.isatty() and bool(work)

    def finished(self, run_id: str) -> None:
        self.left.pop(run_id, None)
        if not self.show:
            return
        elapsed = time.perf_counter() - self.start
        total, left = sum(self.work.values()), sum(self.left.values())
        eta = f", about {_clock(elapsed / (total - left) * left)} left" if 0 < left < total else ""
        bar = tqdm.format_meter(total - left, total, elapsed, ncols=BAR, bar_format="|{bar}|")  # the work done
        print(f"bench: {bar} {len(self.work) - len(self.left)} of {len(self.work)} runs done, {_clock(elapsed)}{eta}",
              file=sys.stderr, flush=True)
