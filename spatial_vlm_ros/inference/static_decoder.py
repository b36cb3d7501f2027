"""Static-shape greedy answer decoding for any transformers causal LM (the GPU answer engine).

Why: eager `generate()` spends most of a short answer in Python and kernel launches (a 2.4B student
takes ~315 ms for 32 tokens on an H200 while its weights can be read in ~1 ms a token). Here the whole
prompt [visual tokens + question embeddings + Hidden CoT latents] goes through ONE prefill pass into a
preallocated `StaticCache`, and every decode step has fixed shapes and fixed addresses, so it can be
captured once in a CUDA graph and replayed per token with no Python in the loop.

The attention mask is built by us from a position counter that lives on the device (4D, so
transformers returns it as-is) and every piece of loop state (next token, position, output slot) is
updated inside the step itself; one graph replay is thus one whole token. On a CPU the very same step
functions run eagerly, which is what the CPU tests compare against `generate()`.

Pure torch + transformers, no ROS.
"""
from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from spatial_vlm_ros.model.heads.language_head import cache_kwarg

#: Decode-step execution modes, in the order `mode="auto"` tries them.
#: cuda_graph: the eager step's kernels replayed from one CUDA graph (fast to prepare, no compiler);
#: compiled_graph: the step compiled by inductor (fused kernels), then captured in our CUDA graph;
#: reduce_overhead: torch.compile mode="reduce-overhead" (its own CUDA graphs, loop state updated eagerly);
#: compiled: the compiled step without any CUDA graph (also runs on a CPU); eager: plain PyTorch.
MODES = ("cuda_graph", "compiled_graph", "reduce_overhead", "compiled", "eager")
_AUTO_ORDER = ("cuda_graph", "compiled_graph", "reduce_overhead", "eager")
_CUDA_ONLY = ("cuda_graph", "compiled_graph", "reduce_overhead")


@dataclass
class StaticDecodeOutput:
    """Greedy answer of one `generate` call."""

    token_ids: torch.Tensor  # (batch, num_tokens) int64 on the model's device
    num_tokens: int
    mode: str  # one of MODES
    stopped_early: bool = False


@dataclass
class WarmupReport:
    """What preparing the engine for one prompt length cost (reported apart from steady-state latency)."""

    prompt_len: int
    mode: str
    seconds: float
    errors: dict[str, str] = field(default_factory=dict)  # mode that failed -> one-line reason


def _make_static_cache(model: torch.nn.Module, max_cache_len: int, batch_size: int, device, dtype):
    """`StaticCache` across transformers 4.4x-5.x, whose constructor arguments changed."""
    from transformers import StaticCache

    params = inspect.signature(StaticCache.__init__).parameters
    kwargs: dict = {"config": model.config, "max_cache_len": max_cache_len}
    if "max_batch_size" in params:
        kwargs["max_batch_size"] = batch_size
    if "batch_size" in params:
        kwargs["batch_size"] = batch_size
    if "device" in params:
        kwargs["device"] = device
    if "dtype" in params:
        kwargs["dtype"] = dtype
    return StaticCache(**kwargs)


def capture_cuda_graph(fn: Callable[[], object], warmup: int = 2, pool=None) -> torch.cuda.CUDAGraph:
    """Capture `fn` (which reads and writes only tensors with fixed addresses) into a CUDA graph.

    Warm-up runs on a side stream first, as CUDA requires (cuBLAS workspaces, lazy allocations);
    they execute `fn` for real, so callers must be able to afford its side effects."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        fn()
    return graph


#: Gated MLPs computing exactly `down_proj(act_fn(gate_proj(x)) * up_proj(x))`.
_GATED_MLP_CLASSES = ("LlamaMLP", "Qwen2MLP", "Qwen3MLP", "MistralMLP")


class FusedGatedMLP(torch.nn.Module):
    """gate_proj and up_proj as one GEMM. At batch 1 a decode step is bound by reading weights; one
    [2I x H] GEMV streams the same bytes as two [I x H] GEMVs with one launch instead of two."""

    def __init__(self, mlp: torch.nn.Module) -> None:
        super().__init__()
        gate, up = mlp.gate_proj, mlp.up_proj
        self.intermediate = gate.out_features
        self.gate_up_proj = torch.nn.Linear(gate.in_features, gate.out_features + up.out_features,
                                            bias=gate.bias is not None, device=gate.weight.device,
                                            dtype=gate.weight.dtype)
        with torch.no_grad():
            self.gate_up_proj.weight.copy_(torch.cat([gate.weight, up.weight], 0))
            if gate.bias is not None:
                self.gate_up_proj.bias.copy_(torch.cat([gate.bias, up.bias], 0))
        self.down_proj, self.act_fn = mlp.down_proj, mlp.act_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).split(self.intermediate, dim=-1)
        return self.down_proj(self.act_fn(gate) * up)


def fuse_gated_mlps(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str, torch.nn.Module]]:
    """Swap every known gated MLP of `model` for a FusedGatedMLP, in place. Returns what `unfuse` needs
    to put the originals back (the fused copy doubles those weights' memory while both are kept)."""
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ in _GATED_MLP_CLASSES and (child.gate_proj.bias is None) == (child.up_proj.bias is None):
                setattr(parent, name, FusedGatedMLP(child))
                swapped.append((parent, name, child))
    return swapped


def unfuse(swapped: list[tuple[torch.nn.Module, str, torch.nn.Module]]) -> None:
    for parent, name, original in swapped:
        setattr(parent, name, original)


class StaticAnswerDecoder:
    """Greedy decoding with a static KV cache; one prefill pass, then a graph-replayed decode step.

    `model` is any transformers causal LM that accepts `inputs_embeds`, a 4D boolean attention mask,
    `position_ids`, `past_key_values` and `logits_to_keep` (all decoder-only models of transformers 5).
    `mode="auto"` picks a CUDA graph on CUDA (falling back to torch.compile, then eager, when capture
    fails; the reasons land in the `WarmupReport`) and eager elsewhere.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        max_prompt_len: int,
        max_new_tokens: int = 32,
        batch_size: int = 1,
        mode: str = "auto",
        eos_token_id: int | None = None,
        stop_check_interval: int = 8,
        compile_backend: str = "inductor",
        compile_prefill: bool = False,
    ) -> None:
        if max_prompt_len < 1 or max_new_tokens < 1 or batch_size < 1:
            raise ValueError("max_prompt_len, max_new_tokens and batch_size must be >= 1")
        if mode not in ("auto", *MODES):
            raise ValueError(f"mode must be auto or one of {MODES}, got {mode!r}")
        param = next(model.parameters())
        self.model = model.eval()
        self.device, self.dtype = param.device, param.dtype
        self.on_cuda = self.device.type == "cuda"
        if mode in _CUDA_ONLY and not self.on_cuda:
            raise ValueError(f"mode {mode!r} needs the model on a CUDA device")
        self.requested_mode = mode
        self.mode = "eager" if mode == "auto" and not self.on_cuda else mode
        self.max_prompt_len = max_prompt_len
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.eos_token_id = eos_token_id
        self.stop_check_interval = max(1, stop_check_interval)
        self.compile_backend = compile_backend
        # Prefill compiled too (graph and compiled modes): fuses the norms/rotary of the 600-token pass.
        self.compile_prefill = compile_prefill
        self._prefill_fns: dict[int, Callable[[int], None]] = {}
        # + slack for the warm-up steps that run before a capture; a multiple of 64 keeps the masked
        # attention kernels on their aligned fast path.
        self.cache_len = -(-(max_prompt_len + max_new_tokens + 4) // 64) * 64
        self.hidden_size = model.get_input_embeddings().weight.shape[1]
        self._cache_kwarg = cache_kwarg(model)

        dev = self.device
        with torch.inference_mode():
            self.cache = _make_static_cache(model, self.cache_len, batch_size, dev, self.dtype)
            # Loop state: read and written by the captured step, so it must never be reallocated.
            self.kv_index = torch.arange(self.cache_len, device=dev)
            self.next_token = torch.zeros(batch_size, 1, dtype=torch.long, device=dev)
            self.position = torch.zeros(batch_size, 1, dtype=torch.long, device=dev)
            self.step_index = torch.zeros(1, dtype=torch.long, device=dev)
            self.tokens = torch.zeros(batch_size, max_new_tokens, dtype=torch.long, device=dev)
        self._prompt_buffers: dict[int, torch.Tensor] = {}
        self._prefill_graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._decode_graph: torch.cuda.CUDAGraph | None = None
        self._compiled_step: Callable | None = None  # compile mode: logits of one step
        self._compiled_body: Callable | None = None  # compiled_graph mode: one whole step
        self.warmups: list[WarmupReport] = []
        self._host_produced = 0  # tokens in `tokens`; guards the device-side index from running past the end

    # -- the two step functions (eager bodies; graphs/compile wrap them) -------------------------

    def _prefill_body(self, prompt_len: int) -> None:
        embeds = self._prompt_buffers[prompt_len]
        self.cache.reset()
        query_pos = self.kv_index[:prompt_len]
        mask = (self.kv_index[None, :] <= query_pos[:, None]).expand(self.batch_size, 1, prompt_len, self.cache_len)
        out = self.model(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=query_pos.unsqueeze(0).expand(self.batch_size, prompt_len),
            use_cache=True,
            **{self._cache_kwarg: self.cache},
            logits_to_keep=1,
        )
        first = out.logits[:, -1].argmax(-1, keepdim=True)
        self.tokens.zero_()
        self.tokens[:, :1].copy_(first)
        self.next_token.copy_(first)
        self.position.fill_(prompt_len)
        self.step_index.fill_(1)

    def _decode_logits(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        mask = (self.kv_index[None, :] <= position).view(self.batch_size, 1, 1, self.cache_len)
        out = self.model(
            input_ids=token,
            attention_mask=mask,
            position_ids=position,
            use_cache=True,
            **{self._cache_kwarg: self.cache},
            logits_to_keep=1,
        )
        return out.logits[:, -1]

    def _decode_body(self) -> None:
        token = self._decode_logits(self.next_token, self.position).argmax(-1, keepdim=True)
        self._commit(token)

    def _commit(self, token: torch.Tensor) -> None:
        # index_copy_ with a device-side index keeps the graph valid for every step.
        self.tokens.index_copy_(1, self.step_index, token)
        self.next_token.copy_(token)
        self.position.add_(1)
        self.step_index.add_(1)

    # -- preparation ------------------------------------------------------------------------------

    def _buffer(self, prompt_len: int) -> torch.Tensor:
        if prompt_len not in self._prompt_buffers:
            with torch.inference_mode():
                self._prompt_buffers[prompt_len] = torch.zeros(
                    self.batch_size, prompt_len, self.hidden_size, dtype=self.dtype, device=self.device
                )
        return self._prompt_buffers[prompt_len]

    def prepare(self, prompt_len: int) -> WarmupReport:
        """Warm up (capture or compile) for prompts of `prompt_len` tokens; cheap when already done."""
        if not 1 <= prompt_len <= self.max_prompt_len:
            raise ValueError(f"prompt length {prompt_len} outside 1..{self.max_prompt_len}")
        self._buffer(prompt_len)
        if self._is_ready(prompt_len):
            return WarmupReport(prompt_len, self.mode, 0.0)
        t0 = time.perf_counter()
        errors: dict[str, str] = {}
        start = _AUTO_ORDER.index(self.mode) if self.mode in _AUTO_ORDER else 0
        candidates = _AUTO_ORDER[start:] if self.requested_mode == "auto" else (self.mode,)
        with torch.inference_mode():
            for candidate in candidates:
                try:
                    self._prepare_mode(candidate, prompt_len)
                    self.mode = candidate
                    break
                except Exception as exc:  # noqa: BLE001 - a failed capture must fall back, not crash
                    first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
                    errors[candidate] = f"{type(exc).__name__}: {first_line}"
                    self._decode_graph, self._compiled_step, self._compiled_body = None, None, None
                    self._prefill_graphs.clear()
                    self._prefill_fns.clear()
                    if self.on_cuda:
                        torch.cuda.synchronize()
            else:
                raise RuntimeError(f"no decode mode worked: {errors}")
        if self.on_cuda:
            torch.cuda.synchronize()
        report = WarmupReport(prompt_len, self.mode, time.perf_counter() - t0, errors)
        self.warmups.append(report)
        return report

    def _is_ready(self, prompt_len: int) -> bool:
        if self.mode == "eager":
            return True
        if self.mode in ("cuda_graph", "compiled_graph"):
            return prompt_len in self._prefill_graphs and self._decode_graph is not None
        if self.mode == "reduce_overhead":
            return self._compiled_step is not None
        if self.mode == "compiled":
            return self._compiled_body is not None
        return False

    def _prepare_mode(self, mode: str, prompt_len: int) -> None:
        if mode == "eager":
            return
        # A valid state first (lazy cache allocation happens here, outside any capture).
        self._prefill_body(prompt_len)
        if mode in ("cuda_graph", "compiled_graph"):
            if self._decode_graph is None:
                body = self._decode_body
                if mode == "compiled_graph":
                    body = self._compiled_body = self._compile_body()
                    for _ in range(2):  # compile (and autotune) before any capture
                        body()
                self._decode_graph = capture_cuda_graph(body, warmup=2)
            # Own memory pool per graph: they are replayed in the opposite order of capture.
            prefill = self._prefill_fn(prompt_len)
            self._prefill_graphs[prompt_len] = capture_cuda_graph(lambda: prefill(prompt_len), warmup=1)
        elif mode == "compiled":
            self._prefill_fn(prompt_len)
            self._compiled_body = self._compile_body()
            for _ in range(2):
                self._compiled_body()
        elif mode == "reduce_overhead":
            if self._compiled_step is None:
                self._compiled_step = torch.compile(self._decode_logits, mode="reduce-overhead", fullgraph=True)
            for _ in range(3):  # reduce-overhead records its CUDA graph on the 2nd-3rd call
                self._commit(self._compiled_step(self.next_token, self.position).argmax(-1, keepdim=True))

    def _prefill_fn(self, prompt_len: int) -> Callable[[int], None]:
        """The prefill body for this length, compiled (and warmed up) when `compile_prefill` is set."""
        if prompt_len not in self._prefill_fns:
            fn = self._prefill_body
            if self.compile_prefill:
                fn = torch.compile(self._prefill_body, fullgraph=True, dynamic=False, backend=self.compile_backend)
                for _ in range(2):
                    fn(prompt_len)
            self._prefill_fns[prompt_len] = fn
        return self._prefill_fns[prompt_len]

    def _compile_body(self) -> Callable[[], None]:
        # fullgraph: a graph break would put Python back inside the step we want to capture.
        return torch.compile(self._decode_body, fullgraph=True, dynamic=False, backend=self.compile_backend)

    # -- running ----------------------------------------------------------------------------------

    def prefill(self, inputs_embeds: torch.Tensor) -> None:
        """Reset the cache and run the prompt; leaves the first answer token in `tokens[:, 0]`."""
        prompt_len = self._check_prompt(inputs_embeds)
        self.prepare(prompt_len)
        with torch.inference_mode():
            self._prompt_buffers[prompt_len].copy_(inputs_embeds)
            graph = self._prefill_graphs.get(prompt_len)
            if graph is not None:
                graph.replay()
            else:
                self._prefill_fns.get(prompt_len, self._prefill_body)(prompt_len)
        self._host_produced = 1

    def decode(self, num_steps: int) -> None:
        """Run `num_steps` decode steps after `prefill` (each appends one token)."""
        if self._host_produced < 1 or self._host_produced + num_steps > self.max_new_tokens:
            raise ValueError(f"decode({num_steps}) after {self._host_produced} tokens exceeds max_new_tokens "
                             f"{self.max_new_tokens} (or no prefill yet)")
        with torch.inference_mode():
            for _ in range(num_steps):
                self._step()

    def _step(self) -> None:
        self._host_produced += 1
        if self._decode_graph is not None:
            self._decode_graph.replay()
        elif self.mode == "reduce_overhead" and self._compiled_step is not None:
            self._commit(self._compiled_step(self.next_token, self.position).argmax(-1, keepdim=True))
        elif self.mode == "compiled" and self._compiled_body is not None:
            self._compiled_body()
        else:
            self._decode_body()

    def generate(self, inputs_embeds: torch.Tensor, max_new_tokens: int | None = None) -> StaticDecodeOutput:
        """Greedy answer for a (batch, prompt_len, hidden) prompt; same ids as `generate(do_sample=False)`."""
        n = self.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        if not 1 <= n <= self.max_new_tokens:
            raise ValueError(f"max_new_tokens {n} outside 1..{self.max_new_tokens}")
        self.prefill(inputs_embeds)
        produced, stopped = 1, False
        with torch.inference_mode():
            while produced < n:
                if self.eos_token_id is not None and self._all_finished(produced):
                    stopped = True
                    break
                steps = n - produced if self.eos_token_id is None else min(n - produced, self.stop_check_interval)
                for _ in range(steps):
                    self._step()
                produced += steps
            tokens = self.tokens[:, :produced].clone()
        return StaticDecodeOutput(tokens, produced, self.mode, stopped)

    def _all_finished(self, produced: int) -> bool:
        # One host sync per `stop_check_interval` tokens, never per token.
        return bool((self.tokens[:, :produced] == self.eos_token_id).any(dim=1).all())

    def _check_prompt(self, inputs_embeds: torch.Tensor) -> int:
        if not isinstance(inputs_embeds, torch.Tensor) or inputs_embeds.dim() != 3:
            raise ValueError("inputs_embeds must be a (batch, prompt_len, hidden) tensor")
        batch, prompt_len, hidden = inputs_embeds.shape
        if batch != self.batch_size or hidden != self.hidden_size:
            raise ValueError(
                f"inputs_embeds shape {tuple(inputs_embeds.shape)} does not match batch {self.batch_size}, "
                f"hidden {self.hidden_size}"
            )
        if not 1 <= prompt_len <= self.max_prompt_len:
            raise ValueError(f"prompt length {prompt_len} outside 1..{self.max_prompt_len}")
        return prompt_len
