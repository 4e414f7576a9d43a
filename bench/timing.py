"""timing.py — the one timer of the PyTorch peer benchmarks (bench/torch_*.py), imported by them
(Python puts the script's own folder first on sys.path).

median_ms(fn, repeat) calls fn once to warm up, then repeat more times, and returns the median
wall and the median process-CPU milliseconds of those calls (CPU: all threads together, a figure a
shared machine disturbs far less than wall time).
"""
import statistics
import time


def median_ms(fn, repeat):
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3
