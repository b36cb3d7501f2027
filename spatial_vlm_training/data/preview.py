"""A contact sheet of a split: RGB with 2D boxes and names | sensor depth | instance masks, per frame."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .sample import iter_samples

_PALETTE = np.array([[0, 0, 0]] + [[(37 * k) % 256, (91 * k) % 256, (151 * k) % 256] for k in range(1, 256)], np.uint8)


def _panel(sample, width: int) -> np.ndarray:
    rgb = sample.load_rgb().copy()
    depth = sample.load_depth()
    _, instance = sample.load_gt()
    for o in sample.objects:
        x0, y0, x1, y1 = (int(round(v)) for v in o.box2d)
        cv2.rectangle(rgb, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 0), 1)
        cv2.putText(rgb, o.description, (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                    cv2.LINE_AA)
    finite = np.isfinite(depth)
    vmax = float(np.percentile(depth[finite], 99)) if finite.any() else 1.0
    d8 = np.where(finite, depth / max(vmax, 1e-3) * 255, 0).clip(0, 255).astype(np.uint8)
    dcol = cv2.applyColorMap(d8, cv2.COLORMAP_TURBO)[:, :, ::-1].copy()
    dcol[~finite] = 0  # holes in black
    row = np.hstack([rgb, dcol, _PALETTE[instance]])
    scale = width / row.shape[1]
    return cv2.resize(row, (width, int(row.shape[0] * scale)), interpolation=cv2.INTER_AREA)


def write_preview(split_dir: Path | str, out_png: Path | str, n_frames: int = 4, width: int = 1200) -> Path:
    panels = [_panel(s, width) for s in iter_samples(split_dir, limit=n_frames)]
    if not panels:
        raise ValueError(f"{split_dir}: no frames to preview")
    sheet = np.vstack(panels)
    out = Path(out_png)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out
