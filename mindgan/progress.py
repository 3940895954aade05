"""A progress display that suits where it goes: a tqdm bar on a terminal; where stderr is a
file or a CI log (a bar there is one endless line of carriage returns), a plain line every
tenth of the work; nothing when disabled."""
from __future__ import annotations

import sys

__all__ = ["Bar"]


class Bar:
    """Progress through `total` units (`unit`), from `initial`, labelled `desc`."""

    def __init__(self, total: int, desc: str, enabled: bool = True, unit: str = "it", initial: int = 0):
        self.bar, self.lines = None, enabled and not sys.stderr.isatty()
        self.total, self.done, self.desc, self.unit = total, initial, desc, unit
        self.every = max(1, total // 10)
        self.next_line = initial + self.every
        if enabled and not self.lines:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, dynamic_ncols=True)

    def update(self, k: int = 1, status: dict | None = None, redraw: bool = True) -> None:
        """k more units done; `status` (name -> text) is shown beside the count (on a bar only
        when `redraw`: redrawing its figures every call costs time)."""
        self.done += k
        if self.bar is not None:
            if status and redraw:
                self.bar.set_postfix(status)
            self.bar.update(k)
        elif self.lines and self.done >= self.next_line and self.done < self.total:
            extra = "".join(f"  {name} {text}" for name, text in (status or {}).items())
            print(f"  {self.desc}  {self.unit} {self.done}/{self.total}{extra}", file=sys.stderr, flush=True)
            self.next_line += self.every

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
