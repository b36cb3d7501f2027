"""PNG charts for the reproduction report, drawn with OpenCV (no plotting library in the stack)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def line_chart(series: dict[str, tuple[list[float], list[float]]], title: str, path: Path, size=(720, 420),
               ylabel: str = "") -> Path:
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 60, 170, 40, 40
    xs = [x for xv, _ in series.values() for x in xv] or [0, 1]
    ys = [y for _, yv in series.values() for y in yv if np.isfinite(y)] or [0, 1]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def px(x, y):
        return (int(left + (x - x0) / (x1 - x0) * (w - left - right)),
                int(h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)))

    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        p = px(x0, yv)
        cv2.putText(img, f"{yv:.2f}", (5, p[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"{x0:g}", (left - 5, h - bottom + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    cv2.putText(img, f"{x1:g} steps", (w - right - 40, h - bottom + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    cv2.putText(img, title + (f" ({ylabel})" if ylabel else ""), (left, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                cv2.LINE_AA)
    for k, (name, (xv, yv)) in enumerate(series.items()):
        c = COLORS[k % len(COLORS)][::-1]
        pts = np.array([px(x, y) for x, y in zip(xv, yv, strict=False) if np.isfinite(y)], np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, c, 2, cv2.LINE_AA)
        cv2.putText(img, name, (w - right + 10, top + 18 * k + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, c, 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def training_curves(model_dirs: dict[str, Path], out_dir: Path) -> list[Path]:
    """Answer loss of every model, and the learned task weights of each uncertainty-weighted model."""
    logs = {}
    for name, d in model_dirs.items():
        f = Path(d) / "training_log.jsonl"
        if f.is_file():
            logs[name] = [r for r in map(json.loads, f.read_text().splitlines()) if "losses" in r]
    written = []
    answer = {n: ([r["step"] for r in rs], [r["losses"].get("answer", np.nan) for r in rs]) for n, rs in logs.items()}
    if answer:
        written.append(line_chart(answer, "answer loss during training", out_dir / "training_answer_loss.png"))
    for name, rs in logs.items():
        if not rs or len({round(v, 3) for v in rs[-1]["weights"].values()}) <= 1:
            continue
        tasks = list(rs[-1]["weights"])
        series = {t: ([r["step"] for r in rs], [r["weights"][t] for r in rs]) for t in tasks}
        written.append(line_chart(series, f"{name}: learned task weights exp(-s)", out_dir / f"task_weights_{name}.png"))
    return written
