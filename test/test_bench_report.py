"""bench/report.py turns result JSON into the README tables and PNG charts (and says what is missing)."""
from __future__ import annotations

import json

import cv2


def _report(monkeypatch, repo_root, tmp_path):
    monkeypatch.syspath_prepend(str(repo_root))
    from bench import report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    monkeypatch.setattr(report, "README", tmp_path / "README.md")
    return report


def test_report_without_results_says_not_run(monkeypatch, repo_root, tmp_path):
    report = _report(monkeypatch, repo_root, tmp_path)
    text = report.render(report.charts())
    assert text.count("Not run yet") == 3
    assert not list(tmp_path.glob("*.png"))


def test_report_renders_numbers_targets_and_charts(monkeypatch, repo_root, tmp_path):
    report = _report(monkeypatch, repo_root, tmp_path)
    model = {"machine": {"cpu": "TestCPU", "usable_cpus": 2}, "date_utc": "2026-01-01T00:00:00Z",
             "settings": {"k_values": [0, 4]}, "errors": {},
             "model.teacher_infer_median_ms": 900.0, "model.student_infer_median_ms": 100.0,
             "model.teacher_answer_median_ms": 50.0, "model.student_answer_median_ms": 10.0,
             "model.teacher_params": 3000, "model.student_params": 1000,
             "model.latency_ratio": 9.0, "model.size_ratio": 3.0, "model.hidden_cot_trained_k": 4,
             "model.hidden_cot_k0_answer_median_ms": 9.0, "model.hidden_cot_k4_answer_median_ms": 10.0,
             "targets": {"model.latency_ratio": {"target": ">= 8.7", "measured": 9.0, "met": True},
                         "model.size_ratio": {"target": ">= 3.0", "measured": 3.0, "met": True}}}
    gpu = {"machine": "NVIDIA H100 80GB HBM3", "torch_version": "2.11.0", "date_utc": "2026-01-01T00:00:00Z",
           "smoke": False, "errors": {}, "settings": {"dtype": "bfloat16", "student_modes": ["cuda_graph"],
                                                      "visual_tokens": 576, "answer_tokens": 32},
           "gpu.teacher_eager_ms": 629.0, "gpu.student_eager_ms": 315.0, "gpu.student_cuda_graph_static_ms": 58.0,
           "gpu.student_static_ms": 58.0, "gpu.target_student_static_met": True,
           "gpu.latency_ratio_static_vs_teacher": 10.8, "gpu.static_speedup_vs_eager": 5.4, "gpu.size_ratio": 2.9}
    (tmp_path / "model.json").write_text(json.dumps(model))
    (tmp_path / "gpu_paper_scale.json").write_text(json.dumps(gpu))
    args = type("Args", (), {"out": tmp_path / "README.md"})()
    assert report.run(args) == 0
    text = (tmp_path / "README.md").read_text()
    assert "TestCPU" in text and "NVIDIA H100 80GB HBM3" in text
    assert "| `model.latency_ratio` | 9x | >= 8.7 | **met** |" in text
    assert "58.0 ms | <= 60 ms | **met**" in text
    assert "| size (`gpu.size_ratio`) | 2.9x | >= 3x | **missed** |" in text
    assert "Not run yet (`spatial-vlm bench node`)" in text
    for name in ("model_latency.png", "gpu_latency.png"):
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and image.shape[1] == 1000 and image.std() > 0
    assert "![GPU latency](gpu_latency.png)" in text


def test_hidden_cot_gpu_runs_give_one_cost(monkeypatch, repo_root, tmp_path):
    report = _report(monkeypatch, repo_root, tmp_path)
    for name, k, ms in (("gpu_hidden_cot_1_k8", 8, 106.0), ("gpu_hidden_cot_2_k0", 0, 100.0), ("gpu_hidden_cot_3_k8", 8, 104.0)):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "machine": "GPU", "settings": {"student_latents": k}, "gpu.student_static_ms": ms,
            "gpu.student_prompt_tokens": 624 + k, "gpu.student_prefill_ms": 5.0, "gpu.student_decode_ms_per_token": 2.8}))
    section = report.gpu_hidden_cot_section()
    assert section.count("| gpu_hidden_cot_") == 3
    assert "x1.050" in section and "**missed**" in section
    assert "Hidden CoT latents at paper size" in report.render()
