"""A progress bar per run (epoch, loss, ETA) that degrades to one plain line per epoch off a TTY."""

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
