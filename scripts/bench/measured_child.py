"""Runs one side of a side-by-side benchmark in a child process of its own, so that its peak
resident memory is its alone (the kernel's high-water mark of that process, read with
wait4), and returns the JSON lines it printed.

Both sides of a ratio go through `run`: our binary, and this machine's PyTorch running a
worker function of the calling script (`python SCRIPT --worker ...`). `options` reads the
command line the side-by-side scripts share."""

import json
import os
import subprocess
import sys
import tempfile


def run(cmd, threads, cwd=None):
    """Runs `cmd` with `threads` threads (RAYON_NUM_THREADS, OMP_NUM_THREADS and
    SWAV_BENCH_THREADS set); returns (the JSON objects it printed one per line, its peak
    resident memory in MiB). Exits with the child's stderr when it fails."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               SWAV_BENCH_THREADS=str(threads))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read()}")
        records = [json.loads(line) for line in out.read().splitlines()
                   if line.startswith("{")]
    return records, usage.ru_maxrss / 1024


def options(settings):
    """The command line of a side-by-side script: (setting names, all by default; --rounds,
    default 2; --threads, default 2). Exits naming an unknown setting."""
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(settings)
    unknown = [n for n in names if n not in settings]
    if unknown:
        sys.exit(f"unknown setting {unknown[0]}; known: {', '.join(settings)}")

    def value(flag):
        return next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith(f"--{flag}=")),
                    2)

    return names, value("rounds"), value("threads")
