"""Benchmarks: node rate/latency, student vs teacher on CPU, the paper-size GPU engine (see bench/README.md)."""
