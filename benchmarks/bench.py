"""Stock ctypes.util.find_library vs ctypes_shim, on this interpreter, in one run.

    python3 benchmarks/bench.py [--quick] [--json [FILE]] [--wheel] [--only SECTIONS]

Sections (see benchmarks/README.md for what each one measures and why):
  1 first call in a fresh process (hit c, hit ssl, miss)
  2 repeated calls in a warm process
  3 interpreter start-up: no activation / sitecustomize on PYTHONPATH / .pth in a venv
  4 the oracle run: every name in `ldconfig -p`, stock vs shim, one fresh process each
  5 scaling: one directory of 100 .. 100,000 files in a fake root, with and without ld.so.cache

Stdlib only.  Timings are wall clock (time.perf_counter_ns) medians with the interquartile
range; ratios are stock median / shim median from the same run.  Children that time a call
run as `python -I -S` with ctypes.util already imported (as in any process that calls
find_library), so only the call itself is on the clock.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MISS = "ctypesshimbenchnosuchlib"  # a library that exists nowhere


# -- child side: keep imports minimal, nothing but the call on the clock ------------------

def _child(spec: dict) -> dict:  # type: ignore[type-arg]
    from time import perf_counter_ns as now

    sys.path.insert(0, REPO)
    import ctypes.util  # loaded in every real caller; not timed

    mode = spec["mode"]
    impl = spec.get("impl", "shim")
    if mode in ("scale", "mem"):
        from ctypes_shim._resolve import Resolver

        resolver = Resolver(root=spec["root"], environ={})
        find = resolver.find
    elif impl == "stock":
        find = ctypes.util.find_library
    elif impl == "patched":
        import ctypes_shim

        ctypes_shim.install()
        find = ctypes.util.find_library
    else:
        from ctypes_shim import find_library as find
    out: dict = {}  # type: ignore[type-arg]

    if mode == "first":
        t0 = now()
        answer = find(spec["name"])
        out = {"ns": now() - t0, "answer": answer}
    elif mode == "warm":
        name, loops = spec["name"], spec["loops"]
        answer = find(name)  # warm-up: the first call builds the caches
        times = []
        if spec.get("new_names"):  # a different name on every call: nothing memoized
            names = [f"{name}{i}" for i in range(loops * spec["repeats"])]
            for r in range(spec["repeats"]):
                batch = names[r * loops:(r + 1) * loops]
                t0 = now()
                for n in batch:
                    find(n)
                times.append((now() - t0) / loops)
        for _ in range(0 if spec.get("new_names") else spec["repeats"]):
            t0 = now()
            for _ in range(loops):
                find(name)
            times.append((now() - t0) / loops)
        out = {"ns": times, "answer": answer}
    elif mode == "oracle":
        names = spec["names"]
        t0 = now()
        answers = [find(n) for n in names]
        out = {"ns": now() - t0, "answers": answers}
    elif mode == "scale":
        t0 = now()
        answer = find(spec["first"])
        first = now() - t0
        laters: dict = {"miss": [], "hit": [], "repeat": []}  # type: ignore[type-arg]
        answers = []
        for kind, names in (("miss", spec["misses"]), ("hit", spec["hits"])):
            for n in names:
                t0 = now()
                a = find(n)
                laters[kind].append(now() - t0)
                answers.append(a)
        name = spec["hits"][0] if spec["hits"] else spec["first"]
        for _ in range(5):
            t0 = now()
            for _ in range(1000):
                find(name)
            laters["repeat"].append((now() - t0) / 1000)
        out = {"ns": first, "answer": answer, "later": laters,
               "later_found": sum(a is not None for a in answers[len(spec["misses"]):]),
               "later_false_hits": sum(a is not None for a in answers[:len(spec["misses"])])}
    elif mode == "mem":
        import gc
        import tracemalloc

        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        answer = find(spec["first"])
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out = {"held": held - before, "peak": peak - before, "answer": answer}
    return out


# -- statistics and formatting -------------------------------------------------------------

def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def stats(xs: list[float]) -> dict:  # type: ignore[type-arg]
    return {"n": len(xs), "median": quantile(xs, 0.5), "p25": quantile(xs, 0.25),
            "p75": quantile(xs, 0.75), "min": min(xs), "max": max(xs)}


def fmt_ns(ns: float) -> str:
    unit, v = "ns", ns
    for name, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if abs(ns) >= scale:
            unit, v = name, ns / scale
            break
    return f"{v:.3g} {unit}" if abs(v) < 1000 else f"{v:.0f} {unit}"


def fmt_stat(s: dict | None, fmt=fmt_ns) -> str:  # type: ignore[type-arg]
    if s is None:
        return "-"
    return f"{fmt(s['median'])} [{fmt(s['p25'])}..{fmt(s['p75'])}]"


def fmt_bytes(b: float) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(b) >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.0f} B"


# -- parent side -----------------------------------------------------------------------------

class Bench:
    def __init__(self, quick: bool, wheel: bool, verbose: bool = True) -> None:
        import tempfile

        self.quick = quick
        self.wheel = wheel
        self.verbose = verbose
        self.python = sys.executable
        self.tmp = tempfile.mkdtemp(prefix="ctypes_shim_bench_")
        self.rows: list[dict] = []  # type: ignore[type-arg]
        self.notes: list[str] = []
        self.extra: dict = {}  # type: ignore[type-arg]

    # helpers -----------------------------------------------------------------------------

    def log(self, msg: str) -> None:
        if self.verbose:
            sys.stderr.write(f"[bench] {msg}\n")
            sys.stderr.flush()

    def child(self, spec: dict, env: dict | None = None) -> dict:  # type: ignore[type-arg]
        import json
        import subprocess

        proc = subprocess.run(
            [self.python, "-I", "-S", os.path.abspath(__file__), "--child", json.dumps(spec)],
            capture_output=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"child {spec['mode']} failed:\n{proc.stderr.decode()}")
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]

    def row(self, section: str, case: str, base: dict | None, shim: dict | None,  # type: ignore[type-arg]
            compare: str = "", *, target: str = "", ok: bool | None = None,
            fmt: str = "ns", **extra: object) -> dict:  # type: ignore[type-arg]
        r = {"section": section, "case": case, "baseline": base, "shim": shim,
             "compare": compare, "target": target, "ok": ok, "unit": fmt}
        r.update(extra)
        self.rows.append(r)
        return r

    def ratio_row(self, section: str, case: str, stock: list[float], shim: list[float],
                  need: float | None) -> dict:  # type: ignore[type-arg]
        a, b = stats(stock), stats(shim)
        ratio = a["median"] / b["median"] if b["median"] else float("inf")
        ok = None if need is None else ratio >= need
        return self.row(section, case, a, b, f"{ratio:,.1f}x" if ratio < 100 else f"{ratio:,.0f}x",
                        target=f">={need:g}x" if need else "", ok=ok, ratio=ratio)

    # 1. first call in a fresh process ----------------------------------------------------------

    def first_calls(self) -> None:
        procs = 5 if self.quick else 20
        cases = [("c", 3.0), ("ssl", 3.0), (MISS, 10.0)]
        times: dict = {(n, i): [] for n, _ in cases for i in ("stock", "shim")}  # type: ignore[type-arg]
        answers: dict = {}  # type: ignore[type-arg]
        self.log(f"1: first call, {procs} fresh processes per case")
        for _ in range(procs):  # interleaved, so drift hits both sides alike
            for name, _need in cases:
                for impl in ("stock", "shim"):
                    r = self.child({"mode": "first", "impl": impl, "name": name})
                    times[name, impl].append(r["ns"])
                    answers[name, impl] = r["answer"]
        for name, need in cases:
            label = "first miss" if name == MISS else f"first hit '{name}'"
            self.ratio_row("1 first call (fresh process)", label, times[name, "stock"],
                           times[name, "shim"], need)
            if answers[name, "stock"] != answers[name, "shim"]:
                self.notes.append(f"first call {name!r}: stock answered "
                                  f"{answers[name, 'stock']!r}, shim {answers[name, 'shim']!r}")
        self.extra["first_call_answers"] = {f"{n}/{i}": a for (n, i), a in answers.items()}

    # 2. repeated calls in a warm process --------------------------------------------------------

    def repeated_calls(self) -> None:
        q = self.quick
        self.log("2: repeated calls in a warm process")
        plan = [  # name, impl, loops, repeats
            ("c", "stock", 1, 10 if q else 30), ("c", "shim", 20000 if q else 100000, 7),
            ("c", "patched", 20000 if q else 100000, 7),
            (MISS, "stock", 1, 3 if q else 8), (MISS, "shim", 200 if q else 1000, 7),
        ]
        res = {}
        for name, impl, loops, repeats in plan:
            res[name, impl] = self.child({"mode": "warm", "impl": impl, "name": name,
                                          "loops": loops, "repeats": repeats})["ns"]
        res["new", "shim"] = self.child({"mode": "warm", "impl": "shim", "name": MISS,
                                         "loops": 100 if q else 300, "repeats": 7,
                                         "new_names": True})["ns"]
        sec = "2 repeated call (warm process)"
        self.ratio_row(sec, "repeated hit 'c'", res["c", "stock"], res["c", "shim"], 1000)
        self.ratio_row(sec, "  via patched ctypes.util", res["c", "stock"],
                       res["c", "patched"], None)
        self.ratio_row(sec, "repeated miss", res[MISS, "stock"], res[MISS, "shim"], 1000)
        self.ratio_row(sec, "  miss, a new name each call", res[MISS, "stock"],
                       res["new", "shim"], None)

    # 3. interpreter start-up --------------------------------------------------------------------

    def _venv(self, name: str, with_shim: bool) -> str:
        import shutil
        import subprocess

        path = os.path.join(self.tmp, name)
        # Both venvs without pip: a venv with pip also gets setuptools on older Pythons,
        # whose distutils-precedence.pth would be timed as if it were ours.
        subprocess.run([self.python, "-m", "venv", "--without-pip", path], check=True)
        py = os.path.join(path, "bin", "python")
        if with_shim and self.wheel:
            wheels = os.path.join(self.tmp, "wheels")
            subprocess.run([self.python, "-m", "pip", "wheel", "-q", "--no-deps", REPO,
                            "-w", wheels], check=True)
            (whl,) = [f for f in os.listdir(wheels) if f.endswith(".whl")]
            subprocess.run([self.python, "-m", "pip", "--python", py, "install", "-q",
                            "--no-deps", os.path.join(wheels, whl)], check=True)
        elif with_shim:  # what the wheel installs: the package, and the .pth beside it
            site = subprocess.run(
                [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True, stdout=subprocess.PIPE).stdout.decode().strip()
            shutil.copytree(os.path.join(REPO, "ctypes_shim"), os.path.join(site, "ctypes_shim"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copy(os.path.join(REPO, "ctypes_shim.pth"), site)
        return py

    def startup(self) -> None:
        import random
        import subprocess

        runs = 12 if self.quick else 50
        self.log(f"3: start-up, {runs} interleaved runs per variant")
        bare = self._venv("venv-bare", False)
        pth = self._venv("venv-pth", True)
        env0 = {k: v for k, v in os.environ.items()
                if not k.startswith(("PYTHON", "CTYPES_SHIM_"))}
        site_env = dict(env0, PYTHONPATH=os.pathsep.join(
            [os.path.join(REPO, "sitecustomize_template"), REPO]))
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        # The sitecustomize route's PYTHONPATH without the sitecustomize: what two more
        # sys.path entries cost every import, with no activation at all.
        path_env = dict(env0, PYTHONPATH=os.pathsep.join([empty, REPO]))
        routes = {"none": (bare, env0), "sitecustomize": (bare, site_env), "pth": (pth, env0),
                  "pythonpath": (bare, path_env)}
        probe = ("import sys; pre = 'ctypes' in sys.modules; import ctypes.util, ctypes_shim; "
                 "print(ctypes_shim.is_installed(), pre)")
        for route, (py, env) in routes.items():  # check each route does what it says
            out = subprocess.run([py, "-c", probe], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, check=False).stdout.decode()
            if route in ("none", "pythonpath"):
                continue
            if out.split()[:2] != ["True", "False"]:
                self.notes.append(f"start-up route {route}: probe printed {out.strip()!r}")
        commands = {"pass": "pass", "import ctypes.util": "import ctypes.util"}
        variants = [(route, cmd) for route in routes for cmd in commands]
        times: dict = {v: [] for v in variants}  # type: ignore[type-arg]
        rng = random.Random(6)
        from time import perf_counter_ns as now

        def spawn(route: str, cmd: str) -> int:
            py, env = routes[route]
            t0 = now()
            pid = os.posix_spawn(py, [py, "-c", commands[cmd]], env)
            _, status = os.waitpid(pid, 0)
            t = now() - t0
            if status != 0:
                raise RuntimeError(f"{route}/{cmd} exited with {status}")
            return t

        for v in variants * 3:  # warm-up: write .pyc files, fill the page cache
            spawn(*v)
        for _ in range(runs):
            order = variants[:]
            rng.shuffle(order)
            for v in order:
                times[v].append(spawn(*v))
        sec = "3 start-up (fresh venv)"
        for cmd, limit in (("pass", 2.0), ("import ctypes.util", 3.0)):
            base = stats(times["none", cmd])
            self.row(sec, f"python -c '{cmd}'", base, None, "(no activation)")
            for route in ("sitecustomize", "pth", "pythonpath"):
                s = stats(times[route, cmd])
                added = (s["median"] - base["median"]) / 1e6
                if route == "pythonpath":  # a control, not a route
                    self.row(sec, "  (PYTHONPATH=<empty>:<repo> only)", base, s,
                             f"+{added:.2f} ms", added_ms=added)
                    continue
                self.row(sec, f"  + {route} route", base, s, f"+{added:.2f} ms",
                         target=f"<{limit:g} ms", ok=added < limit, added_ms=added)
        self.extra["importtime"] = self._importtime(routes, commands)

    def _importtime(self, routes: dict, commands: dict) -> dict:  # type: ignore[type-arg]
        """Which modules each route adds, and their self time, from -X importtime."""
        import subprocess

        reps = 3 if self.quick else 7
        result: dict = {}  # type: ignore[type-arg]
        for cmd, code in commands.items():
            per: dict = {}  # type: ignore[type-arg]
            for route, (py, env) in routes.items():
                if route == "pythonpath":
                    continue
                samples: dict = {}  # type: ignore[type-arg]
                for _ in range(reps):
                    err = subprocess.run([py, "-X", "importtime", "-c", code], env=env,
                                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         check=True).stderr.decode()
                    for line in err.splitlines():
                        parts = line.split("|")
                        if len(parts) != 3 or not parts[0].startswith("import time:"):
                            continue
                        try:
                            self_us = int(parts[0].split(":")[1])
                        except ValueError:
                            continue  # the header line
                        samples.setdefault(parts[2].strip(), []).append(self_us)
                per[route] = {m: quantile(v, 0.5) for m, v in samples.items()}
            for route in ("sitecustomize", "pth"):
                added = {m: us for m, us in per[route].items() if m not in per["none"]}
                result[f"{route} / {cmd}"] = {
                    "added_modules": sorted(added, key=lambda m: -added[m]),
                    "added_self_us": round(sum(added.values())),
                    "by_module_us": {m: round(us) for m, us in added.items()},
                }
        return result

    # 4. the oracle run ---------------------------------------------------------------------------

    def oracle(self) -> None:
        import re
        import subprocess

        out = subprocess.run(["/sbin/ldconfig", "-p"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, check=False).stdout.decode()
        names: list[str] = []
        for line in out.splitlines()[1:]:
            m = re.match(r"\s+lib(.+?)\.so(?:\.|\s|$)", line)
            if m and m.group(1) not in names:
                names.append(m.group(1))
        reps_stock, reps_shim = (1, 3) if self.quick else (3, 7)
        self.log(f"4: oracle run over {len(names)} names "
                 f"({reps_stock} stock, {reps_shim} shim processes)")
        stock, shim = [], []
        answers: dict = {}  # type: ignore[type-arg]
        for _ in range(max(reps_stock, reps_shim)):
            for impl, acc in (("stock", stock), ("shim", shim)):
                if len(acc) < (reps_stock if impl == "stock" else reps_shim):
                    r = self.child({"mode": "oracle", "impl": impl, "names": names})
                    acc.append(r["ns"])
                    answers[impl] = r["answers"]
        diff = [(n, a, b) for n, a, b in zip(names, answers["stock"], answers["shim"]) if a != b]
        self.ratio_row("4 oracle run (fresh process)", f"all {len(names)} ldconfig -p names",
                       stock, shim, None)
        self.extra["oracle"] = {"names": len(names), "agree": len(names) - len(diff),
                                "differ": [{"name": n, "stock": a, "shim": b}
                                           for n, a, b in diff]}
        if diff:
            shown = ", ".join(f"{n}: {a!r} vs {b!r}" for n, a, b in diff[:5])
            self.notes.append(f"oracle: {len(diff)} of {len(names)} names differ "
                              f"(stock vs shim): {shown}")

    # 5. scaling ----------------------------------------------------------------------------------

    def _tree(self, root: str, n: int) -> dict:  # type: ignore[type-arg]
        """ROOT/opt/lib with *n* entries: 50% lib*.so.* junk (not ELF), 35% other files,
        10% ELF libraries with a SONAME, 5% symlinks to them, and libtarget in 3 versions."""
        sys.path.insert(0, os.path.join(REPO, "tests"))
        import elfgen

        d = os.path.join(root, "opt", "lib")
        os.makedirs(d)
        os.makedirs(os.path.join(root, "etc"))
        with open(os.path.join(root, "etc", "ld.so.conf"), "w") as f:
            f.write("/opt/lib\n")
        n_elf, n_link = max(1, n // 10), max(1, n // 20)
        n_junk = n // 2
        n_data = max(0, n - n_elf - n_link - n_junk - 6)
        template = elfgen.native(soname="libhit0000000.so.1")
        for i in range(n_elf):
            name = f"libhit{i:07d}.so.1"
            with open(os.path.join(d, name), "wb") as f:
                f.write(template.replace(b"libhit0000000.so.1", name.encode()))
        for i in range(n_link):
            os.symlink(f"libhit{i:07d}.so.1", os.path.join(d, f"libhit{i:07d}.so"))
        junk = b"not an ELF file\n"
        for i in range(n_junk):
            with open(os.path.join(d, f"libjunk{i:07d}.so.1.2"), "wb") as f:
                f.write(junk)
        for i in range(n_data):
            with open(os.path.join(d, f"data_{i:07d}.dat"), "wb") as f:
                f.write(junk)
        for file, soname in (("libtarget.so.1.0", "libtarget.so.1"),
                             ("libtarget.so.2.3", "libtarget.so.2"),
                             ("libtarget.so.10.1", "libtarget.so.10")):
            with open(os.path.join(d, file), "wb") as f:
                f.write(elfgen.native(soname=soname))
        for link, target in (("libtarget.so.1", "libtarget.so.1.0"),
                             ("libtarget.so.10", "libtarget.so.10.1"),
                             ("libtarget.so", "libtarget.so.10")):
            os.symlink(target, os.path.join(d, link))
        return {"entries": len(os.listdir(d)), "elf": n_elf}

    def scaling(self) -> None:
        import random
        import shutil
        import subprocess

        sizes = [100, 1000, 10000, 100000]
        procs = 3 if self.quick else 10
        later = 30 if self.quick else 100
        sec = "5 scaling (Resolver(root=ROOT))"
        results: dict = {}  # type: ignore[type-arg]
        rng = random.Random(5)
        for n in sizes:
            root = os.path.join(self.tmp, f"root{n}")
            from time import perf_counter_ns as now

            t0 = now()
            info = self._tree(root, n)
            self.log(f"5: {n} files: tree built in {(now() - t0) / 1e9:.1f} s")
            cache = os.path.join(root, "etc", "ld.so.cache")
            t0 = now()
            subprocess.run(["/sbin/ldconfig", "-X", "-r", root], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            ldconfig_ns = now() - t0
            os.rename(cache, cache + ".off")
            for state in ("no cache", "cache"):
                if state == "cache":
                    os.rename(cache + ".off", cache)
                hits = [f"hit{i:07d}" for i in rng.sample(range(info["elf"]),
                                                          min(later, info["elf"]))]
                misses = [f"nosuch{i}" for i in range(later)]
                cold: dict = {"hit": [], "miss": []}  # type: ignore[type-arg]
                answers = {}
                for _ in range(procs):
                    for kind, name in (("hit", "target"), ("miss", MISS)):
                        r = self.child({"mode": "scale", "root": root, "first": name,
                                        "misses": [], "hits": []})
                        cold[kind].append(r["ns"])
                        answers[kind] = r["answer"]
                warm = self.child({"mode": "scale", "root": root, "first": MISS,
                                   "misses": misses, "hits": hits})
                mem = self.child({"mode": "mem", "root": root, "first": MISS})
                results[n, state] = {"cold": cold, "answers": answers, "warm": warm,
                                     "mem": mem, "entries": info["entries"],
                                     "ldconfig_ns": ldconfig_ns}
                if answers["hit"] is None or answers["miss"] is not None:
                    self.notes.append(f"scaling {n}/{state}: answers {answers}")
                if warm["later_found"] != len(hits) or warm["later_false_hits"]:
                    self.notes.append(f"scaling {n}/{state}: later hits found "
                                      f"{warm['later_found']}/{len(hits)}, false hits "
                                      f"{warm['later_false_hits']}")
            shutil.rmtree(root)
        stock_miss = {}
        if not self.quick:
            for n in (100, 100000):  # stock can only be pointed at the dir by LD_LIBRARY_PATH
                root = os.path.join(self.tmp, f"root{n}")
                self._tree(root, n)
                env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(root, "opt", "lib"))
                stock_miss[n] = [self.child({"mode": "first", "impl": "stock", "name": MISS},
                                            env=env)["ns"] for _ in range(3)]
                shutil.rmtree(root)
        for state in ("no cache", "cache"):
            for n in sizes:
                r = results[n, state]
                label = f"{n:>7,} files, {state}"
                for kind in ("hit", "miss"):
                    s = stats(r["cold"][kind])
                    ok = s["median"] < 100e6 if n == 100000 else None
                    base = stats(stock_miss[n]) if kind == "miss" and n in stock_miss \
                        and state == "no cache" else None
                    cmp = (f"{base['median'] / s['median']:.1f}x vs stock+LD_LIBRARY_PATH"
                           if base else "")
                    self.row(sec, f"{label}: first {kind} (cold)", base, s, cmp,
                             target="<100 ms" if n == 100000 else "", ok=ok)
                for kind in ("miss", "hit", "repeat"):
                    s = stats(r["warm"]["later"][kind])
                    small = stats(results[sizes[0], state]["warm"]["later"][kind])
                    grow = s["median"] / small["median"]
                    last = n == sizes[-1]
                    name = {"miss": "later misses (new names)", "hit": "later hits (new names)",
                            "repeat": "repeated hit"}[kind]
                    self.row(sec, f"{label}: {name}", None, s,
                             f"{grow:.2f}x of {sizes[0]}-file" if n != sizes[0] else "",
                             target="<=1.5x of 100-file" if last and kind != "repeat" else "",
                             ok=grow <= 1.5 if last and kind != "repeat" else None)
                m = r["mem"]
                self.row(sec, f"{label}: memory after first miss", None, None,
                         f"held {fmt_bytes(m['held'])}, peak {fmt_bytes(m['peak'])}",
                         held=m["held"], peak=m["peak"])
        self.extra["scaling"] = {f"{n}/{state}": {"entries": r["entries"],
                                                  "ldconfig_ms": r["ldconfig_ns"] / 1e6,
                                                  "answers": r["answers"], "mem": r["mem"]}
                                 for (n, state), r in results.items()}

    # output ---------------------------------------------------------------------------------------

    def table(self) -> str:
        head = ("case", "n", "stock / baseline  median [p25..p75]", "shim  median [p25..p75]",
                "compare", "target", "")
        lines = []
        section = None
        body = []
        for r in self.rows:
            if r["section"] != section:
                section = r["section"]
                body.append(None)
            n = (r["shim"] or r["baseline"] or {}).get("n", "")
            body.append((r["case"], str(n), fmt_stat(r["baseline"]), fmt_stat(r["shim"]),
                         r["compare"], r["target"],
                         "" if r["ok"] is None else ("PASS" if r["ok"] else "MISS")))
        widths = [max(len(head[i]), *(len(b[i]) for b in body if b)) for i in range(len(head))]

        def line(cells: tuple) -> str:  # type: ignore[type-arg]
            return "  ".join(c.ljust(w) if i in (0, 4, 5, 6) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        lines.append(line(head))
        lines.append("-" * len(lines[0]))
        titles = iter(dict.fromkeys(r["section"] for r in self.rows))
        for b in body:
            if b is None:
                lines.append(f"== {next(titles)}")
            else:
                lines.append(line(b))
        return "\n".join(lines)

    def summary(self) -> str:
        checked = [r for r in self.rows if r["ok"] is not None]
        missed = [r for r in checked if not r["ok"]]
        out = [f"targets: {len(checked) - len(missed)}/{len(checked)} PASS"]
        out += [f"  MISS: {r['section']}: {r['case'].strip()} ({r['compare']}, "
                f"target {r['target']})" for r in missed]
        return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import platform
    import shutil
    from time import perf_counter_ns as now

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer runs (about a minute)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write results as JSON to FILE, or instead of the table to stdout")
    p.add_argument("--wheel", action="store_true",
                   help=".pth route: build and pip-install the real wheel (needs network or "
                   "hatchling) instead of copying the package and .pth into the venv")
    p.add_argument("--only", default="12345", help="sections to run, e.g. --only 35")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = p.parse_args(argv)
    if not sys.platform.startswith("linux"):
        sys.stderr.write("bench.py measures Linux behaviour only\n")
        return 2
    b = Bench(args.quick, args.wheel)
    t0 = now()
    try:
        steps = {"1": b.first_calls, "2": b.repeated_calls, "3": b.startup, "4": b.oracle,
                 "5": b.scaling}
        for key in args.only:
            steps[key]()
    finally:
        if not args.keep:
            shutil.rmtree(b.tmp, ignore_errors=True)
    elapsed = (now() - t0) / 1e9
    header = (f"ctypes_shim bench: Python {platform.python_version()} "
              f"({sys.executable}), {platform.machine()}, {os.cpu_count()} CPUs, "
              f"{'quick' if args.quick else 'full'} run, {elapsed:.0f} s")
    doc = {"python": platform.python_version(), "executable": sys.executable,
           "machine": platform.machine(), "cpus": os.cpu_count(), "quick": args.quick,
           "elapsed_s": elapsed, "rows": b.rows, "notes": b.notes, "extra": b.extra}
    if args.json and args.json != "-":
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.json == "-":
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(header)
    print(b.table())
    print()
    print(b.summary())
    if "importtime" in b.extra:
        print("\nimport time added by each route (-X importtime, medians of self time):")
        for k, v in b.extra["importtime"].items():
            mods = ", ".join(f"{m} {v['by_module_us'][m]}" for m in v["added_modules"][:8])
            more = len(v["added_modules"]) - 8
            print(f"  {k}: {v['added_self_us'] / 1000:.2f} ms: {mods} us"
                  + (f" (+{more} more)" if more > 0 else ""))
    if "oracle" in b.extra:
        o = b.extra["oracle"]
        print(f"\noracle: {o['agree']}/{o['names']} names give the same answer")
    for note in b.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        import json

        result = _child(json.loads(sys.argv[2]))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.exit(0)
    sys.exit(main())
