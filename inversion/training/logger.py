"""Run logging: CSV always, TensorBoard when ``tensorboard`` is installed (fail soft)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["RunLogger"]


class RunLogger:
    """Appends scalar rows to ``<dir>/log.csv`` and mirrors them to TensorBoard.

    Only rank 0 writes (pass ``enabled=False`` elsewhere). The CSV header is the union of
    keys seen in the first row; later unknown keys go to ``extra`` as JSON.
    """

    def __init__(self, directory: str | Path, enabled: bool = True, tensorboard: bool = True):
        self.dir = Path(directory)
        self.enabled = enabled
        self._fields: list[str] | None = None
        self._tb = None
        self.start = time.time()
        if not enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.dir / "log.csv"
        if self.csv_path.exists():
            with self.csv_path.open() as f:
                header = f.readline().strip()
            self._fields = header.split(",") if header else None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.dir / "tb"))
            except Exception:  # tensorboard not installed: CSV only
                self._tb = None

    def log(self, step: int, **scalars: Any) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time_s": round(time.time() - self.start, 2)}
        row.update({k: (float(v) if hasattr(v, "__float__") else v) for k, v in scalars.items()})
        new = self._fields is None
        if new:
            self._fields = list(row) + ["extra"]
        extra = {k: v for k, v in row.items() if k not in self._fields}
        out = {k: row.get(k, "") for k in self._fields if k != "extra"}
        out["extra"] = json.dumps(extra) if extra else ""
        with self.csv_path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields)
            if new:
                w.writeheader()
            w.writerow(out)
        if self._tb is not None:
            for k, v in scalars.items():
                if isinstance(v, int | float):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
