#!/usr/bin/env python3
"""Paper-size GPU latency: 7B LLaVA-style teacher vs 2.4B student, eager `generate` vs the static engine.

One run, one GPU, bf16, batch 1, 576 visual tokens, 32-token answers, random init. Measures teacher and
student eager generate, the student (and teacher) through StaticAnswerDecoder (static KV cache, one
prefill over [visual | question | Hidden CoT latents], CUDA-graph decode step) with warm-up reported
apart, encoder / prefill / per-token decode ms, peak memory, params, ratios, and whether the static
engine's greedy ids equal eager greedy ids. Writes bench/results/gpu_paper_scale.json (or --out).

Runs with plain `python3 bench/paper_scale_gpu.py` from the repo root on a box that has only torch +
transformers. Without CUDA it prints "skipped: no CUDA" and writes nothing; `--smoke` runs the same
code at toy size on the CPU.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import importlib.util
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.paper_models import (  # noqa: E402 - needs the repo root on sys.path first
    PAPER_STUDENT,
    PAPER_TEACHER,
    SMOKE_STUDENT,
    SMOKE_TEACHER,
    PaperVLM,
    VLMSpec,
    build,
    count_params,
)

DEFAULT_OUT = REPO / "bench" / "results" / "gpu_paper_scale.json"
TARGET_STUDENT_MS = 60.0
GPU_STUDENT_MODES = ("cuda_graph", "compiled_graph", "compiled_all", "reduce_overhead")
QUICK_ARGS = ["--reps", "3", "--static-reps", "5"]  # `bench all --quick`


def _load_static_decoder():
    """Import static_decoder.py by path so the package __init__ files (and their deps) stay out of it."""
    name = "spatial_vlm_static_decoder"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "spatial_vlm_ros" / "inference" / "static_decoder.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sd = _load_static_decoder()


class Timer:
    """Wall-clock timing with a device sync around each repetition."""

    def __init__(self, device: torch.device) -> None:
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run(self, fn: Callable[[], object], reps: int, warmup: int, setup: Callable[[], object] | None = None):
        for _ in range(warmup):
            if setup:
                setup()
            fn()
        times = []
        for _ in range(reps):
            if setup:
                setup()
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append((time.perf_counter() - t0) * 1000.0)
        return summarize(times)


def summarize(times_ms: list[float]) -> dict:
    ordered = sorted(times_ms)
    p95_index = min(len(ordered) - 1, max(0, int(round(0.95 * len(ordered) + 0.5)) - 1))
    return {"median_ms": round(ordered[len(ordered) // 2], 3), "p95_ms": round(ordered[p95_index], 3),
            "min_ms": round(ordered[0], 3), "n": len(ordered)}


class Results:
    """Flat `gpu.*` metrics, written after every phase so a killed run still leaves what it measured."""

    def __init__(self, out: Path | None, smoke: bool, device: torch.device) -> None:
        import transformers

        self.out = out
        self.data: dict = {
            "benchmark": "paper_scale_gpu",
            "smoke": smoke,
            "complete": False,
            "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
            "torch_version": torch.__version__,
            "transformers_version": transformers.__version__,
            "cuda_version": torch.version.cuda,
            "python_version": platform.python_version(),
            "errors": {},
        }

    def put(self, key: str, value) -> None:
        self.data[key] = round(value, 4) if isinstance(value, float) else value
        print(f"  {key} = {self.data[key]}", flush=True)

    def error(self, phase: str, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {str(exc).splitlines()[0][:400] if str(exc) else ''}"
        self.data["errors"][phase] = text
        print(f"  ERROR in {phase}: {text}", flush=True)

    def save(self) -> None:
        if self.out is None:
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=False) + "\n")
        tmp.replace(self.out)


def _peak_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _inputs(spec: VLMSpec, device, dtype, seed: int = 1):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    e = spec.encoder
    images = torch.randn(e.views, 3, e.image, e.image, generator=gen).to(device=device, dtype=dtype)
    question = torch.randint(0, spec.llm["vocab_size"], (1, spec.n_text), generator=gen).to(device)
    return images, question


def eager_answer(vlm: PaperVLM, images, question) -> torch.Tensor:
    """What a plain transformers pipeline does: encoder, projector, `generate` with a dynamic cache."""
    with torch.inference_mode():
        embeds = vlm.prompt_embeds(images, question)
        return vlm.llm.generate(inputs_embeds=embeds, max_new_tokens=vlm.spec.n_answer, do_sample=False)


@dataclass(frozen=True)
class Variant:
    """One way of running the static engine: a decoder mode plus optional compile/fusion steps."""

    decoder_mode: str
    compile_prefill: bool = False
    compile_front: bool = False  # encoder blocks through one inductor-compiled function
    fuse_mlp: bool = False  # gate_proj + up_proj as one GEMM (FusedGatedMLP)


VARIANTS = {mode: Variant(mode) for mode in sd.MODES}
# Everything compiled and fused: the fastest configuration this engine offers.
VARIANTS["compiled_all"] = Variant("compiled_graph", compile_prefill=True, compile_front=True, fuse_mlp=True)
# The same without CUDA graphs, so the CPU smoke test walks the compile and fusion code too.
VARIANTS["compiled_fused"] = Variant("compiled", compile_prefill=True, compile_front=True, fuse_mlp=True)


def _run_block(block, x):
    return block(x)


class StaticPipeline:
    """Front end (encoder + projector + prompt assembly) as one CUDA graph, answer via StaticAnswerDecoder."""

    def __init__(self, vlm: PaperVLM, images, question, variant: Variant, compile_backend: str = "inductor") -> None:
        self.vlm = vlm
        self.variant = variant
        self.images, self.question = images.clone(), question.clone()
        self.decoder = sd.StaticAnswerDecoder(vlm.llm, max_prompt_len=vlm.spec.prompt_len,
                                              max_new_tokens=vlm.spec.n_answer, mode=variant.decoder_mode,
                                              compile_backend=compile_backend,
                                              compile_prefill=variant.compile_prefill)
        self.run_block = None
        if variant.compile_front:
            self.run_block = torch.compile(_run_block, fullgraph=True, dynamic=False, backend=compile_backend)
        self.front_graph = None
        self.front_error = ""
        with torch.inference_mode():
            self.embeds = vlm.prompt_embeds(self.images, self.question).clone()

    def warm_up(self) -> float:
        t0 = time.perf_counter()
        if self.run_block is not None:
            try:
                with torch.inference_mode():
                    for _ in range(2):
                        self._front_body()
            except Exception as exc:  # noqa: BLE001 - an eager front end still gives a valid timing
                self.run_block, self.front_error = None, f"compile: {type(exc).__name__}: {str(exc)[:300]}"
        if self.decoder.on_cuda and self.decoder.requested_mode in ("auto", "cuda_graph", "compiled_graph"):
            try:
                with torch.inference_mode():
                    self.front_graph = sd.capture_cuda_graph(self._front_body, warmup=2)
            except Exception as exc:  # noqa: BLE001
                self.front_graph = None
                self.front_error += f" capture: {type(exc).__name__}: {str(exc)[:300]}"
                torch.cuda.synchronize()
        self.decoder.prepare(self.vlm.spec.prompt_len)
        self.answer()
        if self.decoder.on_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    def _front_body(self) -> None:
        self.embeds.copy_(self.vlm.prompt_embeds(self.images, self.question, self.run_block))

    def front(self) -> None:
        with torch.inference_mode():
            if self.front_graph is not None:
                self.front_graph.replay()
            else:
                self._front_body()

    def answer(self) -> torch.Tensor:
        """Image + question on the device -> answer ids on the host (the sync is part of the latency)."""
        self.front()
        return self.decoder.generate(self.embeds).token_ids.cpu()


def teacher_forced_check(llm, embeds: torch.Tensor, tokens: torch.Tensor) -> dict:
    """Score the static engine's tokens with one eager no-cache pass: in bf16 a near-tie between the top
    two logits can flip greedy ids between kernels, so 'is each token the eager argmax or within noise of it'
    is the meaningful test when the ids differ."""
    with torch.inference_mode():
        n = tokens.shape[1]
        answer_embeds = llm.get_input_embeddings()(tokens[:, :-1].to(embeds.device))
        logits = llm(inputs_embeds=torch.cat([embeds, answer_embeds], 1), logits_to_keep=n).logits[0].float()
        chosen = logits.gather(1, tokens[0].to(logits.device)[:, None])[:, 0]
        gaps = logits.max(1).values - chosen
        top2 = logits.topk(2, dim=1).values
        margin = (top2[:, 0] - top2[:, 1])
    return {"top1_fraction": float((gaps <= 0).float().mean()), "max_logit_gap": float(gaps.max()),
            "median_top1_top2_margin": float(margin.median())}


def compare_ids(eager: torch.Tensor, static: torch.Tensor) -> dict:
    eager, static = eager.cpu(), static.cpu()
    n = min(eager.shape[1], static.shape[1])
    same = (eager[:, :n] == static[:, :n])[0]
    first_mismatch = int((~same).nonzero()[0, 0]) if not bool(same.all()) else -1
    return {"exact": bool(same.all()) and eager.shape == static.shape, "first_mismatch": first_mismatch,
            "prefix_match": n if first_mismatch < 0 else first_mismatch, "n": int(eager.shape[1])}


def profile_step(step: Callable[[], object], device: torch.device) -> dict:
    """Kernels launched by one decode step and their summed GPU time: with a CUDA graph the step costs about
    the kernel time plus ~1-3 us per kernel, so this says whether weights (GEMV) or small kernels dominate."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize(device)
    kernels = [e for e in prof.events() if getattr(e.device_type, "name", "") == "CUDA"]

    def us(event) -> float:
        return float(getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0.0) or 0.0)

    by_name: dict[str, float] = {}
    for e in kernels:
        by_name[e.name] = by_name.get(e.name, 0.0) + us(e)
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:6]
    return {"kernels": len(kernels), "kernel_ms": sum(us(e) for e in kernels) / 1000.0,
            "top": [{"kernel": name[:80], "ms": round(t / 1000.0, 4)} for name, t in top]}


def tokens_valid(cmp: dict, tf: dict, tolerance: float) -> bool:
    """Exact eager ids, or (bf16 near-ties) every token within `tolerance` logits of the eager argmax."""
    return bool(cmp["exact"] or tf["max_logit_gap"] <= tolerance)


def bench_model(res: Results, key: str, spec: VLMSpec, device, dtype, args, modes: list[str]) -> None:
    """All measurements of one model; frees it afterwards."""
    _reset_peak(device)
    print(f"[{key}] building {spec.name} ...", flush=True)
    t0 = time.perf_counter()
    vlm = build(spec, device, dtype)
    try:
        res.put(f"gpu.{key}_build_s", time.perf_counter() - t0)
        measure_model(res, key, vlm, device, dtype, args, modes)
    finally:
        del vlm
        _reset_peak(device)


def measure_model(res: Results, key: str, vlm: PaperVLM, device, dtype, args, modes: list[str]) -> None:
    spec = vlm.spec
    timer = Timer(device)
    res.put(f"gpu.{key}_params_B", count_params(vlm) / 1e9)
    res.put(f"gpu.{key}_encoder_params_B", count_params(vlm.encoder) / 1e9)
    res.put(f"gpu.{key}_llm_params_B", count_params(vlm.llm) / 1e9)
    res.put(f"gpu.{key}_prompt_tokens", spec.prompt_len)
    res.put(f"gpu.{key}_answer_tokens", spec.n_answer)
    images, question = _inputs(spec, device, dtype)

    with torch.inference_mode():
        enc = timer.run(lambda: vlm.prompt_embeds(images, question), args.reps, args.warmup)
        embeds = vlm.prompt_embeds(images, question)
    res.put(f"gpu.{key}_encoder_eager_ms", enc["median_ms"])
    eager = timer.run(lambda: eager_answer(vlm, images, question), args.reps, args.warmup)
    res.put(f"gpu.{key}_eager_ms", eager["median_ms"])
    res.put(f"gpu.{key}_eager_p95_ms", eager["p95_ms"])
    res.put(f"gpu.{key}_eager_decode_ms_per_token_est", (eager["median_ms"] - enc["median_ms"]) / spec.n_answer)
    peak = _peak_gb(device)
    if peak is not None:
        res.put(f"gpu.{key}_eager_peak_mem_GB", peak)
    res.save()

    best: tuple[float, str] | None = None
    for mode in modes:
        if time.perf_counter() - args.start_time > args.time_budget_s - 60:
            res.data["errors"][f"{key}_{mode}"] = "skipped: time budget"
            continue
        try:
            ms, valid = measure_static_mode(res, key, vlm, images, question, mode, args, timer)
        except Exception as exc:  # noqa: BLE001 - one mode failing must not lose the others
            res.error(f"{key}_{mode}", exc)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            continue
        finally:
            res.save()
        if valid and (best is None or ms < best[0]):
            best = (ms, mode)
    if best is not None:
        mode = best[1]
        res.put(f"gpu.{key}_static_mode", mode)
        for field in ("static_ms", "static_p95_ms", "encoder_ms", "prefill_ms", "decode_ms_per_token",
                      "static_warmup_s", "static_tokens_match_eager"):
            res.put(f"gpu.{key}_{field}", res.data[f"gpu.{key}_{mode}_{field}"])
    elif modes:
        res.data["errors"][f"{key}_static"] = "no static mode produced valid tokens"

    if args.fp32_check and key == "student" and dtype != torch.float32 and best is not None:
        try:
            # cuda_graph: the engine's own logic (cache, mask, positions) without another compile.
            res.put(f"gpu.{key}_fp32_static_tokens_match_eager", fp32_check(vlm, embeds, "cuda_graph"))
        except Exception as exc:  # noqa: BLE001
            res.error(f"{key}_fp32_check", exc)
    peak = _peak_gb(device)
    if peak is not None:
        res.put(f"gpu.{key}_peak_mem_GB", peak)
    res.save()


def measure_static_mode(res: Results, key: str, vlm: PaperVLM, images, question, mode: str, args, timer: Timer
                        ) -> tuple[float, bool]:
    """Warm-up, end-to-end latency, the encoder / prefill / decode split and token checks for one variant."""
    spec = vlm.spec
    variant = VARIANTS[mode]
    tag = f"gpu.{key}_{mode}"
    print(f"[{key}] static engine, {mode}: {variant} ...", flush=True)
    swapped = sd.fuse_gated_mlps(vlm.llm) if variant.fuse_mlp else []
    try:
        if variant.fuse_mlp:
            res.put(f"{tag}_fused_mlps", len(swapped))
        pipe = StaticPipeline(vlm, images, question, variant, args.compile_backend)
        res.put(f"{tag}_static_warmup_s", pipe.warm_up())
        if pipe.decoder.mode != variant.decoder_mode:
            raise RuntimeError(f"decoder fell back to {pipe.decoder.mode}")
        res.put(f"{tag}_front_end_graph", pipe.front_graph is not None)
        res.put(f"{tag}_front_end_compiled", pipe.run_block is not None)
        if pipe.front_error:
            res.data["errors"][f"{key}_{mode}_front_end"] = pipe.front_error.strip()
        total = timer.run(pipe.answer, args.static_reps, args.warmup)
        res.put(f"{tag}_static_ms", total["median_ms"])
        res.put(f"{tag}_static_p95_ms", total["p95_ms"])
        res.put(f"{tag}_static_min_ms", total["min_ms"])
        res.put(f"{tag}_encoder_ms", timer.run(pipe.front, args.static_reps, args.warmup)["median_ms"])
        prefill = timer.run(lambda: pipe.decoder.prefill(pipe.embeds), args.static_reps, args.warmup)
        res.put(f"{tag}_prefill_ms", prefill["median_ms"])
        steps = spec.n_answer - 1
        if steps > 0:
            decode = timer.run(lambda: pipe.decoder.decode(steps), args.static_reps, args.warmup,
                               setup=lambda: pipe.decoder.prefill(pipe.embeds))
            res.put(f"{tag}_decode_ms_per_token", decode["median_ms"] / steps)
        else:
            res.put(f"{tag}_decode_ms_per_token", 0.0)
        _profile_into(res, key, mode, pipe, args)
        embeds = pipe.embeds.clone()
        static_ids = pipe.decoder.generate(embeds).token_ids
    finally:
        sd.unfuse(swapped)  # the reference below and every later variant see the original model

    with torch.inference_mode():  # eager ids of the original model from the very same prompt embeddings
        eager_ids = vlm.llm.generate(inputs_embeds=embeds, max_new_tokens=spec.n_answer, do_sample=False)
    cmp = compare_ids(eager_ids, static_ids)
    tf = teacher_forced_check(vlm.llm, embeds, static_ids)
    valid = tokens_valid(cmp, tf, args.logit_tolerance)
    res.put(f"{tag}_static_tokens_match_eager", cmp["exact"])
    res.put(f"{tag}_static_tokens_prefix_match", cmp["prefix_match"])
    res.put(f"{tag}_teacher_forced_top1_fraction", tf["top1_fraction"])
    res.put(f"{tag}_teacher_forced_max_logit_gap", tf["max_logit_gap"])
    res.put(f"{tag}_median_top1_top2_logit_margin", tf["median_top1_top2_margin"])
    res.put(f"{tag}_tokens_valid", valid)
    return total["median_ms"], valid


def _profile_into(res: Results, key: str, mode: str, pipe: StaticPipeline, args) -> None:
    decoder = pipe.decoder
    body = decoder._compiled_body if decoder.mode in ("compiled_graph", "compiled") else decoder._decode_body
    if not (args.profile and decoder.on_cuda and decoder.mode != "reduce_overhead" and body is not None):
        return
    tag = f"gpu.{key}_{mode}"
    try:
        decoder.prefill(pipe.embeds)
        prof = profile_step(body, decoder.device)
        res.put(f"{tag}_step_kernels", prof["kernels"])
        res.put(f"{tag}_step_kernel_ms", prof["kernel_ms"])
        res.data[f"{tag}_step_top_kernels"] = prof["top"]
    except Exception as exc:  # noqa: BLE001 - a profiler problem must not cost the timings
        res.error(f"{key}_{mode}_profile", exc)


def fp32_check(vlm: PaperVLM, embeds: torch.Tensor, mode: str) -> bool:
    """Exact-id check without bf16 near-ties: the same decoder in fp32, static engine vs eager generate."""
    llm32 = copy.deepcopy(vlm.llm).float()
    try:
        embeds32 = embeds.float()
        with torch.inference_mode():
            eager_ids = llm32.generate(inputs_embeds=embeds32, max_new_tokens=vlm.spec.n_answer, do_sample=False)
        decoder = sd.StaticAnswerDecoder(llm32, max_prompt_len=embeds.shape[1], max_new_tokens=vlm.spec.n_answer,
                                         mode=mode)
        static_ids = decoder.generate(embeds32).token_ids
        return compare_ids(eager_ids, static_ids)["exact"]
    finally:
        del llm32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true", help="toy-size models on the CPU (same code paths)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON output (default {DEFAULT_OUT.relative_to(REPO)}; none for --smoke)")
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions of eager runs")
    parser.add_argument("--static-reps", type=int, default=20, help="timed repetitions of static-engine runs")
    parser.add_argument("--warmup", type=int, default=2, help="untimed repetitions before timing")
    parser.add_argument("--modes", default=None,
                        help="comma-separated static-engine modes for the student, each timed "
                             f"(default {','.join(GPU_STUDENT_MODES)}; eager for --smoke)")
    parser.add_argument("--teacher-modes", default=None,
                        help="static-engine modes for the teacher (default cuda_graph; 'none' to skip)")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend of the compiled variants (aot_eager: fast CPU checks)")
    parser.add_argument("--logit-tolerance", type=float, default=0.125,
                        help="bf16 check: max logit gap to the eager argmax that still counts as the same greedy token")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the per-step kernel profile")
    parser.add_argument("--no-fp32-check", dest="fp32_check", action="store_false",
                        help="skip the fp32 exact-id check of the student decoder")
    parser.add_argument("--skip-teacher", action="store_true", help="student only")
    parser.add_argument("--latents", type=int, default=None,
                        help="Hidden CoT latent tokens of the student (default: the spec's); 0 times the K=0 ablation")
    parser.add_argument("--time-budget-s", type=float, default=240.0,
                        help="skip remaining static modes once this much time has gone")


def run(args: argparse.Namespace) -> int:
    if args.reps < 1 or args.static_reps < 1 or args.warmup < 0:
        raise ValueError("--reps and --static-reps must be >= 1, --warmup >= 0")
    if not args.smoke and not torch.cuda.is_available():
        print("skipped: no CUDA (the paper-scale GPU benchmark needs a CUDA device; --smoke runs it on CPU)")
        return 0
    device = torch.device("cpu") if args.smoke else torch.device("cuda")
    dtype = torch.float32 if args.smoke else torch.bfloat16
    student, teacher = (SMOKE_STUDENT, SMOKE_TEACHER) if args.smoke else (PAPER_STUDENT, PAPER_TEACHER)
    if args.latents is not None:
        if args.latents < 0:
            raise ValueError("--latents must be >= 0")
        student = replace(student, n_latent=args.latents)
    out = args.out if args.out is not None else (None if args.smoke else DEFAULT_OUT)
    res = Results(out, args.smoke, device)
    student_modes = _modes(args.modes, ["eager"] if args.smoke else list(GPU_STUDENT_MODES))
    teacher_modes = _modes(args.teacher_modes, ["eager"] if args.smoke else ["cuda_graph"])
    res.data["settings"] = {"dtype": str(dtype).replace("torch.", ""), "batch": 1, "student_modes": student_modes,
                            "teacher_modes": teacher_modes,
                            "reps": args.reps, "static_reps": args.static_reps, "warmup": args.warmup,
                            "student": student.name, "teacher": teacher.name,
                            "visual_tokens": student.n_visual, "question_tokens": student.n_text,
                            "student_latents": student.n_latent, "answer_tokens": student.n_answer}
    print(f"paper-scale GPU benchmark on {res.data['machine']} (torch {torch.__version__})", flush=True)
    t_start = args.start_time = time.perf_counter()
    if not args.skip_teacher:
        try:
            bench_model(res, "teacher", teacher, device, dtype, args, teacher_modes)
        except Exception as exc:  # noqa: BLE001 - keep the student numbers even if the 7B fails
            res.error("teacher", exc)
            _reset_peak(device)
    try:
        bench_model(res, "student", student, device, dtype, args, student_modes)
    except Exception as exc:  # noqa: BLE001
        res.error("student", exc)
    _ratios(res)
    res.put("gpu.total_benchmark_s", time.perf_counter() - t_start)
    res.data["complete"] = not res.data["errors"]
    res.save()
    print(json.dumps(res.data), flush=True)
    if out is not None:
        print(f"wrote {out}")
    return 0 if "student" not in res.data["errors"] else 1


def _modes(text: str | None, default: list[str]) -> list[str]:
    if text is None:
        return default
    modes = [m.strip() for m in text.split(",") if m.strip() and m.strip() != "none"]
    unknown = [m for m in modes if m not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; choose from {', '.join(VARIANTS)}")
    return modes


def _ratios(res: Results) -> None:
    d = res.data

    def ratio(name: str, num: str, den: str) -> None:
        if isinstance(d.get(num), (int, float)) and isinstance(d.get(den), (int, float)) and d[den] > 0:
            res.put(name, d[num] / d[den])

    ratio("gpu.latency_ratio_static_vs_teacher", "gpu.teacher_eager_ms", "gpu.student_static_ms")
    ratio("gpu.latency_ratio_static_vs_teacher_static", "gpu.teacher_static_ms", "gpu.student_static_ms")
    ratio("gpu.latency_ratio_eager", "gpu.teacher_eager_ms", "gpu.student_eager_ms")
    ratio("gpu.static_speedup_vs_eager", "gpu.student_eager_ms", "gpu.student_static_ms")
    ratio("gpu.teacher_static_speedup_vs_eager", "gpu.teacher_eager_ms", "gpu.teacher_static_ms")
    ratio("gpu.size_ratio", "gpu.teacher_params_B", "gpu.student_params_B")
    if isinstance(d.get("gpu.student_static_ms"), (int, float)):
        res.put("gpu.target_student_static_ms", TARGET_STUDENT_MS)
        res.put("gpu.target_student_static_met", d["gpu.student_static_ms"] <= TARGET_STUDENT_MS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paper_scale_gpu.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError) as exc:
        print(f"paper_scale_gpu: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
