#!/usr/bin/env python3
"""Write results/answering_val.json: the validation-split ladder behind the answering choices of
2026-11-26 (never the test split). Each rung adds one change to the one before, on the same frames:

1. `lm_closest_thr0.3`: the LM picks "which is closest" from the closed answer set; score threshold 0.3;
2. `superlatives`: "closest / farthest" from the model's own pair judgements (`engine._superlative`);
3. `thr0.5`: region-head score threshold 0.5 (the default since);
4. `category_fallback`: a category word we named nothing as goes to the detector's likeliest object
   (`lm_inputs.mentioned(..., label_scores)`);
5. `support_from_pairs`: "what is X resting on" from the model's own pair judgements
   (`engine._support_of`, sixth session); this is the committed engine.

The earlier behaviours are restored by patching the engine in this process only.

    scripts/measure_answering_val.py VAL_DIR [MODEL_DIR] [FRAMES]"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from spatial_vlm_ros.inference import engine as engine_mod
from spatial_vlm_ros.inference.lm_inputs import mentioned
from spatial_vlm_training.eval.harness import evaluate

REPO = Path(__file__).resolve().parents[1]


def _no_superlative(self, question, state):  # also stands in for _support_of: both return None
    return None


def _no_category_fallback(self, text):
    return mentioned(text, self.descriptions, self.categories)


def main() -> int:
    val = Path(sys.argv[1])
    model = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "resource" / "models" / "student"
    frames = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    committed = (engine_mod.SpatialVLMEngine._superlative, engine_mod._FrameState.find,
                 engine_mod.SpatialVLMEngine._support_of)
    rungs = [("lm_closest_thr0.3", _no_superlative, _no_category_fallback, _no_superlative, 0.3),
             ("superlatives", committed[0], _no_category_fallback, _no_superlative, 0.3),
             ("thr0.5", committed[0], _no_category_fallback, _no_superlative, 0.5),
             ("category_fallback", *committed[:2], _no_superlative, 0.5),
             ("support_from_pairs", *committed, 0.5)]
    out = {"data": str(val), "model": str(model), "frames": frames, "rungs": {}}
    for name, superlative, find, support_of, threshold in rungs:
        engine_mod.SpatialVLMEngine._superlative = superlative
        engine_mod._FrameState.find = find
        engine_mod.SpatialVLMEngine._support_of = support_of
        r = evaluate(engine_mod.load_engine(model, score_threshold=threshold), val, limit=frames, progress=False)
        m = r.metrics
        out["rungs"][name] = {"score_threshold": threshold, "proximity_accuracy": m["proximity_accuracy"],
                              "contact_accuracy": m["contact_accuracy"], "detection_map50": m["detection_map50"],
                              "per_kind": {k: v for k, v in r.per_kind.items() if k.count("/") == 1}}
        print(f"{name:20s} proximity {m['proximity_accuracy']:.3f} contact {m['contact_accuracy']:.3f} "
              f"mAP {m['detection_map50']:.3f}", flush=True)
    (engine_mod.SpatialVLMEngine._superlative, engine_mod._FrameState.find,
     engine_mod.SpatialVLMEngine._support_of) = committed
    path = REPO / "results" / "answering_val.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
