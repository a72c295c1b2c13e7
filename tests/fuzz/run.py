"""Fuzz job: hostile inputs for the ELF reader, the cache reader, the ld.so.conf parser and
the resolver on whole fuzzed roots, checked against the invariants in checks.py.

    python3 tests/fuzz/run.py --cases 100000 [--seed 1] [--jobs 2] [--only elf,cache]
    python3 tests/fuzz/run.py --atheris elf|cache -- -runs=100000   (coverage-guided, 3.11)

Case i of a run is rebuilt from (seed, i) alone, so a failure printed as `case 1234 seed 1
kind elf` replays with `--replay 1234`.  Exit status 1 when any case failed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.dirname(os.path.dirname(HERE))]

from fuzz import cases, checks, reference  # noqa: E402

# kind -> weight; the filesystem kinds are slower, so they get fewer cases
KINDS = {"elf": 40, "elf-bytes": 8, "cache": 30, "cache-bytes": 7, "conf": 8, "root": 7}


def default_dir() -> str:
    """The loader's first /usr/lib default dir (from `ld.so --help`), e.g.
    /usr/lib/x86_64-linux-gnu: where a generated root puts its system libraries."""
    dirs = [d for d in reference.interp().default_dirs() if d.startswith("/usr/lib")]
    return dirs[0] if dirs else "/usr/lib"


def kind_of(rng: random.Random, only: list[str]) -> str:
    kinds = [k for k in KINDS if not only or k in only or k.split("-")[0] in only]
    return rng.choices(kinds, weights=[KINDS[k] for k in kinds])[0]


def run_case(seed: int, i: int, only: list[str], scratch: str) -> tuple[str, bool]:
    """Build and check case *i*; returns (kind, whether the reference decided it)."""
    rng = random.Random("%d:%d" % (seed, i))
    kind = kind_of(rng, only)
    if kind == "elf":
        data, kw = cases.random_elf_case(rng)
        # a file for read_elf only every 8th case: the write costs more than the parse
        info = checks.check_elf(data, scratch if i % 8 == 0 else None)
        if kw is not None:
            checks.check_elf_fields(info, kw)
        return kind, True
    if kind == "elf-bytes":
        checks.check_elf(cases.random_bytes(rng), scratch if i % 8 == 0 else None)
        return kind, True
    if kind == "cache":
        data, built = cases.random_cache_case(rng)
        cache = checks.check_cache(data)
        if built is not None:
            checks.check_cache_entries(cache, built)
        return kind, True
    if kind == "cache-bytes":
        checks.check_cache(cases.random_bytes(rng))
        return kind, True
    root = os.path.join(scratch, "root%d" % i)
    os.mkdir(root)
    try:
        if kind == "conf":
            cases.random_conf_tree(rng, root)
            checks.check_conf(root)
        else:
            name, environ = cases.random_root(rng, root, DEFAULT_DIR)
            _, want = checks.check_resolver(root, name, environ, must_find=name == cases.GOOD)
            return kind, want is None or want.decided
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return kind, True


def run_range(seed: int, start: int, stop: int, only: list[str], stop_on_fail: bool,
              ) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    failures: list[str] = []
    scratch = tempfile.mkdtemp(prefix="ctypes-shim-fuzz-")
    try:
        for i in range(start, stop):
            try:
                kind, decided = run_case(seed, i, only, scratch)
                if not decided:
                    kind += " (undecided)"
            except AssertionError as e:
                kind = "failed"
                text = "case %d seed %d: %s" % (i, seed, str(e)[:2000] or traceback.format_exc())
                failures.append(text)
                sys.stderr.write(text + "\n")
                if stop_on_fail:
                    break
            counts[kind] = counts.get(kind, 0) + 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return counts, failures


def _worker(args: tuple[int, int, int, list[str], bool]) -> tuple[dict[str, int], list[str]]:
    return run_range(*args)


def atheris_main(target: str, argv: list[str]) -> int:
    import atheris  # optional: pip install atheris (has wheels for CPython 3.11 on x86_64)

    atheris.instrument_all()  # the parsers are imported already (through checks)

    def one(data: bytes) -> None:
        if target == "elf":
            checks.check_elf(data)
        else:
            checks.check_cache(data)

    atheris.Setup([sys.argv[0], *argv], one)
    atheris.Fuzz()
    return 0


DEFAULT_DIR = "/usr/lib"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated: elf,cache,conf,root")
    parser.add_argument("--replay", type=int, help="run only this case number, verbosely")
    parser.add_argument("--stop", action="store_true", help="stop at the first failure")
    parser.add_argument("--atheris", choices=("elf", "cache"))
    args, rest = parser.parse_known_args(argv)
    why = reference.available()
    if why is not None and args.atheris is None and args.only in ("", "root"):
        print("fuzz: the root cases need glibc's ldconfig and loader: %s" % why)
        return 2
    global DEFAULT_DIR  # noqa: PLW0603 -- read once, before any worker forks
    DEFAULT_DIR = default_dir() if why is None else "/usr/lib"
    if args.atheris:
        return atheris_main(args.atheris, rest)
    only = [k for k in args.only.split(",") if k]
    if args.replay is not None:
        counts, failures = run_range(args.seed, args.replay, args.replay + 1, only, True)
        print(counts, failures)
        return 1 if failures else 0
    started = time.monotonic()
    jobs = max(1, args.jobs)
    step = -(-args.cases // jobs)
    ranges = [(args.seed, a, min(a + step, args.cases), only, args.stop)
              for a in range(0, args.cases, step)]
    if jobs == 1:
        results = [run_range(*r) for r in ranges]
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(_worker, ranges)
    counts: dict[str, int] = {}
    failures: list[str] = []
    for c, f in results:
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        failures += f
    total = sum(counts.values())
    print("fuzz: %d cases run (seed %d, %.0f s): %s" % (
        total, args.seed, time.monotonic() - started,
        ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
    print("fuzz: %d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
