"""Render bench/README.md from bench/results/*.json: every number, the machine it came from, targets.

`spatial-vlm bench report` rewrites the file; `bench all` calls it at the end, so the table never
drifts from the JSON. Missing result files show as "not run yet" rather than stale numbers.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.common import REPO, RESULTS

README = REPO / "bench" / "README.md"

INTRO = """# Benchmarks

Speed is a feature of this product (the paper's headline: 8.7x lower latency at 3x smaller size), so
it is measured in benchmarks, never in timed tests. Every number below is generated from
`bench/results/*.json` by `spatial-vlm bench report` (run by `bench all`); ratios always come from one
run with both models side by side; absolute times are only meaningful with the machine named.

| command | what it measures | writes |
|---|---|---|
| `spatial-vlm bench model` | embedded teacher vs student on the CPU, batch 1, same generated 640x480 frames: infer()/answer() median + p95, parameters, peak RSS, ratios; Hidden CoT K = 0/4/8/16 | `bench/results/model.json` |
| `spatial-vlm bench node` | the node in its own process, a camera process streaming 640x480 RGB-D at 30 Hz over Fast DDS shared memory, then ~/query at 50 req/s: output rate, stamp-to-output latency, drops, CPU, service latency and errors | `bench/results/node.json` |
| `spatial-vlm bench gpu` (= `python3 bench/paper_scale_gpu.py`) | paper-size models on one GPU (bf16, batch 1, 576 visual tokens, 32-token answers): 7B teacher and 2.4B student eager `generate` vs the static engine (`spatial_vlm_ros/inference/static_decoder.py`) | `bench/results/gpu_paper_scale.json` |
| `spatial-vlm bench all` | model + node (+ gpu when CUDA is present), then this README | all of the above |
| `make bench` | `bench all` | |

The GPU benchmark needs only torch + transformers, so it runs on a bare GPU box from the repo root:
`python3 bench/paper_scale_gpu.py --out $OUT/gpu_paper_scale.json` (about 3-4 minutes, compile
included; `--smoke` runs the same code at toy size on a CPU; without CUDA it prints `skipped: no CUDA`).
"""


def _load(name: str) -> dict | None:
    path = RESULTS / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
        return f"{text}{unit}"
    return f"{value}{unit}"


def _met(flag) -> str:
    return {True: "**met**", False: "**missed**"}.get(flag, "not measured")


def _machine_line(data: dict) -> str:
    m = data.get("machine")
    if isinstance(m, dict):
        return (f"{m.get('cpu')} ({m.get('usable_cpus')} usable cores, {m.get('memory_GB')} GB), torch {m.get('torch')}, "
                f"{m.get('torch_threads')} torch threads; load average at start {m.get('load_avg_1m_at_start')} "
                f"(the machine is shared); {data.get('date_utc')}")
    return f"{m}, torch {data.get('torch_version')}, transformers {data.get('transformers_version')}; {data.get('date_utc')}"


def model_section(d: dict | None) -> str:
    if d is None:
        return "## Model: teacher vs student (CPU)\n\nNot run yet (`spatial-vlm bench model`).\n"
    rows = [("infer() median", "infer_median_ms", " ms"), ("infer() p95", "infer_p95_ms", " ms"),
            ("answer() median", "answer_median_ms", " ms"), ("answer() p95", "answer_p95_ms", " ms"),
            ("parameters", "params", ""), ("weights file", "weights_MB", " MB"),
            ("peak RSS (load + infer + answer, fresh process)", "peak_rss_MB", " MB"),
            ("RSS added by the model", "peak_delta_MB", " MB"), ("Hidden CoT K", "hidden_cot_k", ""),
            ("answer length (median words; answer() decodes to EOS)", "answer_words_median", "")]
    lines = ["## Model: teacher vs student (CPU)", "", f"Machine: {_machine_line(d)}.", "",
             "| | teacher | student |", "|---|---|---|"]
    for label, key, unit in rows:
        lines.append(f"| {label} | {_fmt(d.get(f'model.teacher_{key}'), unit)} | "
                     f"{_fmt(d.get(f'model.student_{key}'), unit)} |")
    lines += ["", "| ratio (teacher / student, one run) | measured | target | |", "|---|---|---|---|"]
    targets = d.get("targets", {})
    for key in ("model.latency_ratio", "model.size_ratio"):
        t = targets.get(key, {})
        lines.append(f"| `{key}` | {_fmt(d.get(key), 'x')} | {t.get('target', '-')} | {_met(t.get('met'))} |")
    lines.append(f"| `model.answer_latency_ratio` | {_fmt(d.get('model.answer_latency_ratio'), 'x')} | - | |")
    lines.append(f"| `model.memory_ratio` | {_fmt(d.get('model.memory_ratio'), 'x')} | - | |")
    ks = [k for k in d.get("settings", {}).get("k_values", []) if f"model.hidden_cot_k{k}_answer_median_ms" in d]
    if ks:
        lines += ["", f"Hidden CoT K (student, trained with K={d.get('model.hidden_cot_trained_k')}; larger K are "
                  "timed with extra untrained latents, latency only):", "",
                  "| K | infer() median | answer() median |", "|---|---|---|"]
        for k in ks:
            lines.append(f"| {k} | {_fmt(d.get(f'model.hidden_cot_k{k}_infer_median_ms'), ' ms')} | "
                         f"{_fmt(d.get(f'model.hidden_cot_k{k}_answer_median_ms'), ' ms')} |")
    for name in ("student", "teacher"):
        stages = d.get(f"model.{name}_stage_median_ms")
        if stages:
            parts = ", ".join(f"{k} {_fmt(v)} ms" for k, v in stages.items())
            lines += ["", f"Where the {name}'s infer() time goes (median per stage): {parts}."]
    prof = d.get("profile_student_top_self_time")
    if prof:
        top = "; ".join(f"`{r['function']}` {r['self_ms']} ms" for r in prof[:6])
        lines += ["", f"cProfile of one student infer + answer, top self time: {top}."]
    if d.get("errors"):
        lines += ["", f"Errors: {d['errors']}"]
    return "\n".join(lines) + "\n"


def _node_time_budget(d: dict, model: dict | None) -> list[str]:
    """Why a missed node target was missed: the per-frame model cost bounds the rate before ROS does."""
    missed = [k for k, t in d.get("targets", {}).items() if t.get("met") is False]
    if not missed:
        return []
    lines = ["", f"Where the time goes (targets missed: {', '.join(missed)}):"]
    if model and model.get("model.student_infer_median_ms"):
        infer = model["model.student_infer_median_ms"]
        stages = model.get("model.student_stage_median_ms", {})
        parts = ", ".join(f"{k} {_fmt(v)} ms" for k, v in stages.items() if k != "total")
        lines.append(f"- the student's infer() alone takes {_fmt(infer, ' ms')} median per 640x480 frame on this "
                     f"machine (bench model), i.e. at most {_fmt(1000.0 / infer, ' Hz')} from one inference thread; "
                     f"by stage: {parts}.")
        prof = model.get("profile_student_top_self_time") or []
        if prof:
            lines.append("- top self time in one infer + answer (cProfile): "
                         + "; ".join(f"`{r['function']}` {r['self_ms']} ms" for r in prof[:5]) + ".")
    cpu = d.get("node.machine_cpu_percent")
    load = d.get("machine", {}).get("load_avg_1m_at_start")
    if cpu is not None:
        lines.append(f"- the whole machine was at {_fmt(cpu, ' %')} CPU during the run (load average {load} on "
                     f"{d.get('machine', {}).get('usable_cpus')} cores, shared with other jobs); the node itself "
                     f"used {_fmt(d.get('node.node_cpu_percent'), ' %')} of one core.")
    diag = d.get("node_diagnostics_last") or {}
    if diag.get("dropped_stale"):
        lines.append(f"- the node dropped {diag['dropped_stale']} stale input sets by design (it always "
                     "processes the newest frame), so latency is the model time plus waiting for the CPU.")
    return lines


def node_section(d: dict | None, model: dict | None = None) -> str:
    if d is None:
        return "## Node end to end (ROS 2)\n\nNot run yet (`spatial-vlm bench node`).\n"
    s = d.get("settings", {})
    lines = ["## Node end to end (ROS 2)", "", f"Machine: {_machine_line(d)}.",
             f"Input {s.get('input_size')} RGB-D ({s.get('depth_encoding')} depth) at {s.get('input_hz')} Hz, "
             f"{s.get('duration_s')} s per phase after {s.get('warmup_s')} s warm-up; node parameters "
             f"{', '.join(s.get('node_params', []))}; {s.get('transport')}.", "",
             "| | stream only | stream + queries |", "|---|---|---|"]
    for label, key, unit in (("output rate", "output_hz", " Hz"), ("input rate", "input_hz", " Hz"),
                             ("stamp-to-output latency median", "latency_median_ms", " ms"),
                             ("stamp-to-output latency p95", "latency_p95_ms", " ms"),
                             ("frames published", "frames_published", ""), ("frames output", "frames_output", ""),
                             ("dropped (not processed) frames", "dropped_frames", ""),
                             ("node CPU (100 % = one core)", "node_cpu_percent", " %"),
                             ("camera stand-in process CPU", "camera_process_cpu_percent", " %"),
                             ("probe process CPU (subscriber + service client)", "probe_process_cpu_percent", " %"),
                             ("whole machine CPU", "machine_cpu_percent", " %"), ("node RSS", "node_rss_MB", " MB")):
        lines.append(f"| {label} | {_fmt(d.get(f'node.{key}'), unit)} | "
                     f"{_fmt(d.get(f'node_under_query_load.{key}'), unit)} |")
    lines += ["", f"Service `~/query` at {s.get('query_hz')} req/s: {_fmt(d.get('service.requests'))} requests, "
              f"median {_fmt(d.get('service.latency_median_ms'), ' ms')}, p95 {_fmt(d.get('service.latency_p95_ms'), ' ms')}, "
              f"errors {_fmt(d.get('service.errors'))} ({d.get('service.errors_by_kind')}), answers with "
              f"success=false {_fmt(d.get('service.unsuccessful_answers'))}.", "",
              "| target | measured | |", "|---|---|---|"]
    for key, t in d.get("targets", {}).items():
        lines.append(f"| `{key}` {t.get('target')} | {_fmt(t.get('measured'))} | {_met(t.get('met'))} |")
    lines += _node_time_budget(d, model)
    if d.get("node_diagnostics_last"):
        lines += ["", f"The node's own /diagnostics at the end: {d['node_diagnostics_last']}."]
    if d.get("errors"):
        lines += ["", f"Errors: {d['errors']}"]
    return "\n".join(lines) + "\n"


def node_variants_section() -> str:
    """node.json next to the other node_*.json runs (same benchmark, one setting changed each)."""
    runs = [("default", _load("node.json"))]
    runs += [(p.stem.removeprefix("node_"), _load(p.name)) for p in sorted(RESULTS.glob("node_*.json"))]
    runs = [(name, d) for name, d in runs if d]
    if len(runs) < 2:
        return ""
    lines = ["### Node: one setting changed per run", "",
             "| run | node settings | output Hz | latency median / p95 | under queries: Hz | service p95 | "
             "service errors | node CPU | machine load at start |", "|---|---|---|---|---|---|---|---|---|"]
    for name, d in runs:
        s = d.get("settings", {})
        extra = [x for x in s.get("node_params", [])[1:]] + (
            [f"torch threads {s['node_torch_threads']}"] if s.get("node_torch_threads", "default") != "default" else [])
        lines.append(f"| {name} | {', '.join(extra)} | {_fmt(d.get('node.output_hz'))} | "
                     f"{_fmt(d.get('node.latency_median_ms'), ' ms')} / {_fmt(d.get('node.latency_p95_ms'), ' ms')} | "
                     f"{_fmt(d.get('node_under_query_load.output_hz'))} | {_fmt(d.get('service.latency_p95_ms'), ' ms')} | "
                     f"{_fmt(d.get('service.errors'))} | {_fmt(d.get('node.node_cpu_percent'), ' %')} | "
                     f"{d.get('machine', {}).get('load_avg_1m_at_start')} |")
    by_name = dict(runs)
    base, one = by_name.get("default"), by_name.get("threads1")
    if base and one and base.get("node.output_hz") and one.get("node.output_hz"):
        lines += ["", f"With torch's intra-op pool at 1 thread the node ran {_fmt(one['node.output_hz'] / base['node.output_hz'], 'x')} "
                  f"the default's output rate ({_fmt(one['node.output_hz'], ' Hz')} vs {_fmt(base['node.output_hz'], ' Hz')}, runs "
                  "minutes apart under similar machine load). On 2 cores, torch's 2 OpenMP threads compete with the "
                  "node's own executor threads and any other process, and spinning OpenMP workers then stall every "
                  "operator. The node should call torch.set_num_threads(1) on machines with <= 2 cores."]
    return "\n".join(lines) + "\n"


def gpu_hidden_cot_section() -> str:
    """gpu_hidden_cot_*.json: the paper-size student's static engine with K latents and without, in turn
    on one machine (`paper_scale_gpu.py --skip-teacher --modes cuda_graph --latents K`)."""
    runs = [(p.stem, _load(p.name)) for p in sorted(RESULTS.glob("gpu_hidden_cot_*.json"))]
    runs = [(name, d) for name, d in runs if d and isinstance(d.get("gpu.student_static_ms"), (int, float))]
    if not runs:
        return ""
    lines = ["### Hidden CoT latents at paper size", "",
             f"Machine: {_machine_line(runs[0][1])}; runs in this order on one warm machine, student static "
             "engine (cuda_graph), 32-token answers.", "",
             "| run | latents K | prompt tokens | end to end | prefill | decode / token |", "|---|---|---|---|---|---|"]
    for name, d in runs:
        lines.append(f"| {name} | {d['settings']['student_latents']} | {d.get('gpu.student_prompt_tokens')} | "
                     f"{_fmt(d['gpu.student_static_ms'], ' ms')} | {_fmt(d.get('gpu.student_prefill_ms'), ' ms')} | "
                     f"{_fmt(d.get('gpu.student_decode_ms_per_token'), ' ms')} |")
    with_k = [d["gpu.student_static_ms"] for _, d in runs if d["settings"]["student_latents"] > 0]
    without = [d["gpu.student_static_ms"] for _, d in runs if d["settings"]["student_latents"] == 0]
    if with_k and without:
        cost = (sum(with_k) / len(with_k)) / (sum(without) / len(without))
        lines += ["", f"Latency cost of the latents (mean with / mean without): x{cost:.3f} "
                  f"(target < 5 %: {'met' if cost < 1.05 else '**missed**'}). The latents add "
                  f"{runs[0][1]['settings']['student_latents']} tokens to one prefill and as many cache positions to each decode step."]
    return "\n".join(lines) + "\n"


def gpu_section(d: dict | None) -> str:
    if d is None:
        return ("## Paper-size GPU engine\n\nNot run yet: needs a CUDA GPU (`python3 bench/paper_scale_gpu.py`). "
                "Reference points measured earlier on an H200 (eager transformers generate, same shapes): "
                "student 315 ms, teacher 629 ms for a 32-token answer.\n")
    g = d.get
    lines = ["## Paper-size GPU engine", "", f"Machine: {_machine_line(d)}; {d.get('settings', {}).get('dtype')}, batch 1, "
             f"{d.get('settings', {}).get('visual_tokens')} visual tokens, {d.get('settings', {}).get('answer_tokens')}"
             "-token answers, random init (weights do not change latency)." + (" **Smoke run (toy sizes).**"
                                                                               if d.get("smoke") else ""), "",
             "| | teacher (CLIP-L/336 + 7B) | student (VGGT-1B-size + 1B Llama + 8 latents) |", "|---|---|---|"]
    for label, key, unit in (("parameters", "params_B", " B"), ("eager generate, end to end", "eager_ms", " ms"),
                             ("static engine, end to end", "static_ms", " ms"),
                             ("static engine p95", "static_p95_ms", " ms"), ("static engine mode", "static_mode", ""),
                             ("encoder + projector (graphed)", "encoder_ms", " ms"), ("prefill", "prefill_ms", " ms"),
                             ("decode per token", "decode_ms_per_token", " ms"),
                             ("warm-up / capture / compile", "static_warmup_s", " s"),
                             ("static ids == eager greedy ids", "static_tokens_match_eager", ""),
                             ("peak GPU memory", "peak_mem_GB", " GB")):
        lines.append(f"| {label} | {_fmt(g(f'gpu.teacher_{key}'), unit)} | {_fmt(g(f'gpu.student_{key}'), unit)} |")
    modes = d.get("settings", {}).get("student_modes", [])
    if modes:
        lines += ["", "Student static engine by decode mode:", "",
                  "| mode | end to end | decode / token | prefill | warm-up | kernels / step | kernel time / step | ids == eager | max logit gap |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for m in modes:
            p = f"gpu.student_{m}_"
            lines.append(f"| {m} | {_fmt(g(p + 'static_ms'), ' ms')} | {_fmt(g(p + 'decode_ms_per_token'), ' ms')} | "
                         f"{_fmt(g(p + 'prefill_ms'), ' ms')} | {_fmt(g(p + 'static_warmup_s'), ' s')} | "
                         f"{_fmt(g(p + 'step_kernels'))} | {_fmt(g(p + 'step_kernel_ms'), ' ms')} | "
                         f"{_fmt(g(p + 'static_tokens_match_eager'))} | {_fmt(g(p + 'teacher_forced_max_logit_gap'))} |")
    target_met = g("gpu.target_student_static_met")
    lines += ["", "| ratio / target | measured | target | |", "|---|---|---|---|",
              f"| student static vs teacher eager (`gpu.latency_ratio_static_vs_teacher`) | "
              f"{_fmt(g('gpu.latency_ratio_static_vs_teacher'), 'x')} | >= 8.7x | "
              f"{_met(None if g('gpu.latency_ratio_static_vs_teacher') is None else g('gpu.latency_ratio_static_vs_teacher') >= 8.7)} |",
              f"| student static vs teacher static (`gpu.latency_ratio_static_vs_teacher_static`) | "
              f"{_fmt(g('gpu.latency_ratio_static_vs_teacher_static'), 'x')} | - | |",
              f"| eager vs eager (`gpu.latency_ratio_eager`) | {_fmt(g('gpu.latency_ratio_eager'), 'x')} | - | |",
              f"| static engine speed-up over eager generate (`gpu.static_speedup_vs_eager`) | "
              f"{_fmt(g('gpu.static_speedup_vs_eager'), 'x')} | >= 5x | "
              f"{_met(None if g('gpu.static_speedup_vs_eager') is None else g('gpu.static_speedup_vs_eager') >= 5)} |",
              f"| student 32-token answer (`gpu.student_static_ms`) | {_fmt(g('gpu.student_static_ms'), ' ms')} | "
              f"<= 60 ms | {_met(target_met)} |",
              f"| size (`gpu.size_ratio`) | {_fmt(g('gpu.size_ratio'), 'x')} | >= 3x | "
              f"{_met(None if g('gpu.size_ratio') is None else g('gpu.size_ratio') >= 3)} |",
              f"| fp32 static ids == eager ids | {_fmt(g('gpu.student_fp32_static_tokens_match_eager'))} | yes | |"]
    lines += _gpu_time_budget(d)
    if d.get("errors"):
        lines += ["", f"Errors / fallbacks: {d['errors']}"]
    return "\n".join(lines) + "\n"


#: HBM bandwidth (TB/s) of the GPUs this project is lent, for the weight-streaming floor of a decode step.
_HBM_TBPS = {"H200": 4.8, "H100": 3.35}


def _gpu_time_budget(d: dict) -> list[str]:
    g = d.get
    mode = g("gpu.student_static_mode")
    if mode is None or g("gpu.student_static_ms") is None:
        return []
    steps = (g("gpu.student_answer_tokens") or 32) - 1
    enc, pre, tok = g("gpu.student_encoder_ms"), g("gpu.student_prefill_ms"), g("gpu.student_decode_ms_per_token")
    lines = ["", f"Where the student's {_fmt(g('gpu.student_static_ms'), ' ms')} go ({mode}): encoder + projector "
             f"{_fmt(enc, ' ms')}, one prefill over {g('gpu.student_prompt_tokens')} prompt tokens {_fmt(pre, ' ms')}, "
             f"{steps} decode steps x {_fmt(tok, ' ms')} = {_fmt((tok or 0) * steps, ' ms')}."]
    kernels, kernel_ms = g(f"gpu.student_{mode}_step_kernels"), g(f"gpu.student_{mode}_step_kernel_ms")
    if kernels and kernel_ms:
        lines.append(f"One decode step launches {kernels} kernels that run {_fmt(kernel_ms, ' ms')} on the GPU "
                     f"(the rest of the {_fmt(tok, ' ms')} is launch gaps).")
    bandwidth = next((bw for name, bw in _HBM_TBPS.items() if name in str(d.get("machine", ""))), None)
    llm_b = g("gpu.student_llm_params_B")
    if bandwidth and llm_b:
        floor = llm_b * 2 / bandwidth  # GB / (TB/s) = ms
        lines.append(f"Reading the {_fmt(llm_b, ' B')}-parameter decoder's bf16 weights once takes "
                     f"{_fmt(floor, ' ms')} at {bandwidth} TB/s, so the decode floor is about "
                     f"{_fmt(floor * steps, ' ms')} for {steps} steps; the rest is many small GEMV and elementwise "
                     "kernels (top kernels per mode in the JSON).")
    return lines


def charts() -> dict[str, Path]:
    """PNG bar charts next to the JSON; returns the ones written, by section."""
    from bench.plot import bar_chart

    out: dict[str, Path] = {}
    m = _load("model.json")
    if m:
        path = bar_chart(RESULTS / "model_latency.png", "CPU, batch 1: teacher vs student (median)", [
            ("teacher infer()", m.get("model.teacher_infer_median_ms")),
            ("student infer()", m.get("model.student_infer_median_ms")),
            ("teacher answer()", m.get("model.teacher_answer_median_ms")),
            ("student answer()", m.get("model.student_answer_median_ms"))],
            note=f"{m.get('machine', {}).get('cpu')}, {m.get('date_utc')}")
        if path:
            out["model"] = path
    g = _load("gpu_paper_scale.json")
    if g:
        rows = [("teacher 7B, eager generate", g.get("gpu.teacher_eager_ms")),
                ("teacher 7B, static engine", g.get("gpu.teacher_static_ms")),
                ("student 2.4B, eager generate", g.get("gpu.student_eager_ms"))]
        rows += [(f"student, static {mode}", g.get(f"gpu.student_{mode}_static_ms"))
                 for mode in g.get("settings", {}).get("student_modes", [])]
        settings = g.get("settings", {})
        title = f"{settings.get('answer_tokens')}-token answer, end to end ({settings.get('dtype')}, batch 1)"
        path = bar_chart(RESULTS / "gpu_latency.png", title, rows,
                         note=f"{g.get('machine')}, torch {g.get('torch_version')}, {g.get('date_utc')}"
                              + (" (smoke: toy sizes)" if g.get("smoke") else ""))
        if path:
            out["gpu"] = path
    return out


def render(images: dict[str, Path] | None = None) -> str:
    images = images or {}

    def with_image(section: str, key: str, alt: str) -> str:
        if key not in images:
            return section
        rel = images[key].relative_to(README.parent).as_posix()
        return section + f"\n![{alt}]({rel})\n"

    return "\n".join([INTRO, with_image(model_section(_load("model.json")), "model", "CPU latency"),
                      node_section(_load("node.json"), _load("model.json")), node_variants_section(),
                      with_image(gpu_section(_load("gpu_paper_scale.json")), "gpu", "GPU latency"),
                      gpu_hidden_cot_section()])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=README, help="where to write the Markdown")


def run(args: argparse.Namespace) -> int:
    args.out.write_text(render(charts()))
    print(f"wrote {args.out}")
    return 0
