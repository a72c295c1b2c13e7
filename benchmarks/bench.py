"""What callers pay for ctypes_shim, as deployed, against stock find_library, in one run.

    python3 benchmarks/bench.py [--quick] [--wheel WHL] [--json [FILE]] [--only SECTIONS]

Set-up (in a temp dir, once per run): the wheel is built from this checkout (or taken from
--wheel) and installed the ways users install it.  Every shim layout has a stock twin, the
same layout without the shim:

  .pth        `python -m venv` + the venv's pip installs the wheel; twin: `python -m venv`
  bootstrap   `pip install --target deps`, PYTHONPATH=deps/ctypes_shim/_bootstrap:deps
  template    the same deps, sitecustomize_template/ copied to site/, PYTHONPATH=site:deps
  install()   the same deps, PYTHONPATH=deps, the child calls ctypes_shim.install()
  no .pyc     bootstrap over a copy of deps without __pycache__ (sources copied, not compiled)
  (twin of the last four: a bare `python -m venv --without-pip` with PYTHONPATH=<empty deps>)

Sections:
  a  first call in a fresh process (c, ssl, a miss), everything the call loads on the clock
  b  `import ctypes.util` plus the first call, together, in the same processes as (a)
  c  start-up added to `python -c pass` and `python -c "import ctypes.util"`
  d  repeated hit and repeated miss in a warm process
  e  a 100,000-file directory: first lookup (Resolver(root=...))
  i  -X importtime: what each ctypes_shim module (and anything it pulls in) costs, by phase
  o  the oracle run: every `ldconfig -p` name in one process

Stdlib only, standalone.  Children run with PYTHONDONTWRITEBYTECODE=1 (as on machines that
export it, and in read-only images), so only .pyc files that pip wrote are used; the report
says which were present.  Fresh processes, stock and shim interleaved, ratios from medians
of the same run.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MISS = "ctypesshimbenchnosuchlib"  # a library that exists nowhere

# The child of sections a/b: three clock readings, so one process gives both the first
# call alone and `import ctypes.util` + the first call.  For install() the import and
# the install() call sit between the first two readings.
FIRST_CALL = """\
from time import perf_counter_ns as now
t0 = now()
import ctypes.util
{install}t1 = now()
answer = ctypes.util.find_library({name!r})
t2 = now()
import sys
sys.stdout.write("%d %d %r\\n" % (t1 - t0, t2 - t1, answer))
"""
INSTALL = "import ctypes_shim\nctypes_shim.install()\n"


def _child(spec: dict) -> dict:  # type: ignore[type-arg]
    """Sections d, e and o: run by an interpreter of a prepared layout."""
    import ctypes.util  # loaded in every real caller; not timed
    from time import perf_counter_ns as now

    mode = spec["mode"]
    if mode in ("scale", "mem"):
        from ctypes_shim._resolve import Resolver

        find = Resolver(root=spec["root"], environ={}).find
    else:
        find = ctypes.util.find_library  # patched by the .pth in the shim venv
    out: dict = {"patched": hasattr(ctypes.util.find_library, "__wrapped__")}  # type: ignore[type-arg]
    if mode == "warm":
        name, loops = spec["name"], spec["loops"]
        out["answer"] = find(name)  # the first call builds the caches
        times = []
        if spec.get("new_names"):  # a different name on every call: nothing memoized
            names = [f"{name}{i}" for i in range(loops * spec["repeats"])]
            for r in range(spec["repeats"]):
                batch = names[r * loops:(r + 1) * loops]
                t0 = now()
                for n in batch:
                    find(n)
                times.append((now() - t0) / loops)
        else:
            for _ in range(spec["repeats"]):
                t0 = now()
                for _ in range(loops):
                    find(name)
                times.append((now() - t0) / loops)
        out["ns"] = times
    elif mode == "oracle":
        t0 = now()
        out["answers"] = [find(n) for n in spec["names"]]
        out["ns"] = now() - t0
    elif mode == "scale":
        t0 = now()
        out["answer"] = find(spec["first"])
        out["ns"] = now() - t0
        later: dict = {"miss": [], "hit": []}  # type: ignore[type-arg]
        found = []
        for kind in ("miss", "hit"):
            for n in spec[kind + "es" if kind == "miss" else "hits"]:
                t0 = now()
                found.append(find(n) is not None)
                later[kind].append(now() - t0)
        out["later"] = later
        out["later_found"] = sum(found[len(spec["misses"]):])
        out["later_false_hits"] = sum(found[:len(spec["misses"])])
    elif mode == "mem":
        import gc
        import tracemalloc

        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        out["answer"] = find(spec["first"])
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(held=held - before, peak=peak - before)
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


def fmt_stat(s: dict | None) -> str:  # type: ignore[type-arg]
    if s is None:
        return "-"
    return f"{fmt_ns(s['median'])} [{fmt_ns(s['p25'])}..{fmt_ns(s['p75'])}]"


def fmt_ratio(r: float) -> str:
    return f"{r:,.2f}x" if r < 10 else f"{r:,.1f}x" if r < 100 else f"{r:,.0f}x"


def fmt_bytes(b: float) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(b) >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.0f} B"


# -- layouts -------------------------------------------------------------------------------

class Layout:
    """An interpreter plus environment that a child runs in."""

    def __init__(self, name: str, python: str, pythonpath: str | None, twin: str | None,
                 install: bool = False) -> None:
        self.name, self.python, self.twin, self.install = name, python, twin, install
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "CTYPES_SHIM_"))}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if pythonpath is not None:
            env["PYTHONPATH"] = pythonpath
        self.env = env


SHIM_ROUTES = (".pth", "bootstrap", "template", "install()", "no .pyc")
TARGET_ROUTES = (".pth", "bootstrap")  # the two routes as the README deploys them


class Bench:
    def __init__(self, quick: bool, wheel: str | None, template: str,
                 verbose: bool = True) -> None:
        import tempfile

        self.quick = quick
        self.wheel = wheel
        self.template = template
        self.verbose = verbose
        self.python = sys.executable
        self.tmp = tempfile.mkdtemp(prefix="ctypes_shim_bench_")
        self.rows: list[dict] = []  # type: ignore[type-arg]
        self.notes: list[str] = []
        self.extra: dict = {}  # type: ignore[type-arg]
        self.layouts: dict[str, Layout] = {}
        self.stderr = ""

    def log(self, msg: str) -> None:
        if self.verbose:
            sys.stderr.write(f"[bench] {msg}\n")
            sys.stderr.flush()

    def run(self, *cmd: str, **kw: object) -> str:
        """Run *cmd*; return its stdout, keep its stderr in self.stderr (-X importtime)."""
        import subprocess

        # cwd: a neutral dir, so that the '' that `-c` puts first on sys.path cannot
        # shadow the installed package with this checkout's sources.
        kw.setdefault("cwd", self.tmp)
        proc = subprocess.run(cmd, capture_output=True, check=False,
                              **kw)  # type: ignore[call-overload]
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()}")
        self.stderr = proc.stderr.decode()
        return proc.stdout.decode()  # type: ignore[no-any-return]

    # set-up --------------------------------------------------------------------------------

    def setup(self) -> None:
        import shutil

        t = self.tmp
        wheel = self.wheel
        if wheel is None:
            self.log("building the wheel (pip wheel --no-deps)")
            self.run(self.python, "-m", "pip", "wheel", "-q", "--no-deps", REPO,
                     "-w", os.path.join(t, "wheel"))
            (name,) = os.listdir(os.path.join(t, "wheel"))
            wheel = os.path.join(t, "wheel", name)
        self.extra["wheel"] = os.path.basename(wheel)
        self.log("venvs: stock and shim (python -m venv, with pip), base (--without-pip)")
        venv_py = {}
        for v in ("venv-stock", "venv-shim"):
            self.run(self.python, "-m", "venv", os.path.join(t, v))
            venv_py[v] = os.path.join(t, v, "bin", "python")
        # The venv's own pip installs the wheel and byte-compiles it, as `pip install` does.
        # --no-deps: pyelftools and wrapt are never imported on these paths.
        self.run(venv_py["venv-shim"], "-m", "pip", "install", "-q", "--no-deps", wheel)
        self.run(self.python, "-m", "venv", "--without-pip", os.path.join(t, "base"))
        base = os.path.join(t, "base", "bin", "python")
        deps, stock_deps = os.path.join(t, "deps"), os.path.join(t, "deps-stock")
        self.run(self.python, "-m", "pip", "install", "-q", "--no-deps", "--target", deps, wheel)
        os.mkdir(stock_deps)  # the same --target dir, without the shim
        site = os.path.join(t, "site")
        os.mkdir(site)
        shutil.copy(self.template, os.path.join(site, "sitecustomize.py"))
        nopyc = os.path.join(t, "deps-nopyc")
        shutil.copytree(deps, nopyc, ignore=shutil.ignore_patterns("__pycache__"))
        boot = os.path.join("ctypes_shim", "_bootstrap")
        L = Layout
        self.layouts = {
            "stock venv": L("stock venv", venv_py["venv-stock"], None, None),
            ".pth": L(".pth", venv_py["venv-shim"], None, "stock venv"),
            "stock PYTHONPATH": L("stock PYTHONPATH", base, stock_deps, None),
            "bootstrap": L("bootstrap", base, os.pathsep.join([os.path.join(deps, boot), deps]),
                           "stock PYTHONPATH"),
            "template": L("template", base, os.pathsep.join([site, deps]), "stock PYTHONPATH"),
            "install()": L("install()", base, deps, "stock PYTHONPATH", install=True),
            "no .pyc": L("no .pyc", base, os.pathsep.join([os.path.join(nopyc, boot), nopyc]),
                         "stock PYTHONPATH"),
        }
        purelib = self.run(venv_py["venv-shim"], "-c",
                           "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
        self.extra["pyc"] = {
            ".pth venv site-packages": self._pyc_count(purelib),
            "deps (pip install --target)": self._pyc_count(deps),
            "site/ (copied template)": self._pyc_count(site),
            "deps-nopyc (copied sources)": self._pyc_count(nopyc),
        }
        self.extra["stock_venv_pth"] = sorted(
            f for f in os.listdir(purelib) if f.endswith(".pth") and f != "ctypes_shim.pth")
        probe = ("import sys; pre = sorted(m for m in ('ctypes', 'wrapt', 'elftools', 'logging',"
                 " 'typing', 're') if m in sys.modules); import ctypes.util; "
                 "print(hasattr(ctypes.util.find_library, '__wrapped__'), pre)")
        self.extra["probe"] = {}
        for name, lay in self.layouts.items():
            out = self.run(lay.python, "-c", probe, env=lay.env).strip()
            self.extra["probe"][name] = out
            want = "True []" if name in SHIM_ROUTES and not lay.install else "False []"
            if out != want:
                self.notes.append(f"layout {name}: start-up probe printed {out!r}, "
                                  f"expected {want!r}")

    def _pyc_count(self, top: str) -> str:
        """How many of our .py files under *top* have a .pyc for this interpreter."""
        import importlib.util

        ours = []
        for d, _, files in os.walk(top):
            if "ctypes_shim" in d.split(os.sep) or d == top:
                ours += [os.path.join(d, f) for f in files
                         if f.endswith(".py") and (d != top or f == "sitecustomize.py")]
        have = sum(os.path.exists(importlib.util.cache_from_source(f)) for f in ours)
        return f"{have}/{len(ours)} .py files have a {sys.implementation.cache_tag} .pyc"

    # helpers ---------------------------------------------------------------------------------

    def row(self, section: str, case: str, base: dict | None, shim: dict | None,  # type: ignore[type-arg]
            compare: str = "", *, target: str = "", ok: bool | None = None,
            **extra: object) -> None:
        r = {"section": section, "case": case, "baseline": base, "shim": shim,
             "compare": compare, "target": target, "ok": ok}
        r.update(extra)
        self.rows.append(r)

    def ratio_row(self, section: str, case: str, stock: list[float], shim: list[float],
                  need: float | None) -> float:
        a, b = stats(stock), stats(shim)
        ratio = a["median"] / b["median"] if b["median"] else float("inf")
        self.row(section, case, a, b, fmt_ratio(ratio),
                 target=f">={need:g}x" if need is not None else "",
                 ok=None if need is None else ratio >= need, ratio=ratio)
        return ratio

    def child(self, layout: str, spec: dict) -> dict:  # type: ignore[type-arg]
        import json

        lay = self.layouts[layout]
        out = self.run(lay.python, os.path.abspath(__file__), "--child", json.dumps(spec),
                       env=lay.env)
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]

    # a + b: first call ---------------------------------------------------------------------------

    def first_calls(self) -> None:
        procs = 7 if self.quick else 21
        names = ("c", "ssl", MISS)
        layouts = list(self.layouts)
        self.log(f"a/b: first call, {procs} fresh processes per name and layout")
        times: dict = {}  # type: ignore[type-arg]
        answers: dict = {}  # type: ignore[type-arg]
        for _ in range(procs):  # interleaved, so drift hits every layout alike
            for name in names:
                for lay in layouts:
                    code = FIRST_CALL.format(name=name,
                                             install=INSTALL if self.layouts[lay].install else "")
                    out = self.run(self.layouts[lay].python, "-c", code,
                                   env=self.layouts[lay].env).split(maxsplit=2)
                    acc = times.setdefault((lay, name), {"import": [], "call": [], "total": []})
                    acc["import"].append(int(out[0]))
                    acc["call"].append(int(out[1]))
                    acc["total"].append(int(out[0]) + int(out[1]))
                    answers[lay, name] = out[2].strip()
        sec_a = "a first call in a fresh process (lazy load on the clock)"
        for name in names:
            label = "miss" if name == MISS else f"'{name}'"
            need = 15.0 if name == MISS else 5.0
            for lay in SHIM_ROUTES:
                twin = self.layouts[lay].twin
                self.ratio_row(sec_a, f"{label} {lay} vs {twin}", times[twin, name]["call"],
                               times[lay, name]["call"], need if lay in TARGET_ROUTES else None)
                if answers[lay, name] != answers[twin, name]:
                    self.notes.append(f"first call {name!r}: {twin} answered "
                                      f"{answers[twin, name]}, {lay} {answers[lay, name]}")
        sec_b = "b import ctypes.util + first call, timed in the process"
        for name in names:
            label = "miss" if name == MISS else f"'{name}'"
            for lay in SHIM_ROUTES:
                twin = self.layouts[lay].twin
                hit = name != MISS
                self.ratio_row(sec_b, f"{label} {lay} vs {twin}", times[twin, name]["total"],
                               times[lay, name]["total"], 1.0 if hit else None)
        sec = "b import ctypes.util alone (install(): + import ctypes_shim + install())"
        for lay in SHIM_ROUTES:
            twin = self.layouts[lay].twin
            stock = [x for n in names for x in times[twin, n]["import"]]
            shim = [x for n in names for x in times[lay, n]["import"]]
            a, b = stats(stock), stats(shim)
            self.row(sec, f"{lay} vs {twin}", a, b,
                     f"+{(b['median'] - a['median']) / 1e6:.2f} ms")
        self.extra["first_call_answers"] = {f"{lay}/{n}": a for (lay, n), a in answers.items()}

    # c: start-up ----------------------------------------------------------------------------------

    def startup(self) -> None:
        import random
        from time import perf_counter_ns as now

        runs = 25 if self.quick else 80
        commands = {"pass": "pass", "import ctypes.util": "import ctypes.util"}
        used = ["stock venv", ".pth", "stock PYTHONPATH", "bootstrap", "template", "no .pyc"]
        variants = [(lay, cmd) for lay in used for cmd in commands]
        self.log(f"c: start-up, {runs} shuffled runs of {len(variants)} variants")
        times: dict = {v: [] for v in variants}  # type: ignore[type-arg]
        rng = random.Random(12)

        def spawn(lay: str, cmd: str) -> tuple[int, float]:
            layout = self.layouts[lay]
            t0 = now()
            pid = os.posix_spawn(layout.python, [layout.python, "-c", commands[cmd]], layout.env)
            # (start-up ends before sys.path gets '', so the cwd does not matter here)
            _, status, usage = os.wait4(pid, 0)
            t = now() - t0
            if status != 0:
                raise RuntimeError(f"{lay}/{cmd} exited with {status}")
            return t, (usage.ru_utime + usage.ru_stime) * 1e9

        for v in variants * 2:  # warm-up: the page cache
            spawn(*v)
        for _ in range(runs):
            order = variants[:]
            rng.shuffle(order)
            for v in order:
                times[v].append(spawn(*v))
        # Two clocks.  CPU time (user + sys of the child, from wait4) is what start-up work
        # costs; wall time adds waiting for a CPU, which on a shared machine is mostly
        # other people's load.  Targets are checked on CPU time; both are reported.
        sec = "c start-up added (fresh process; CPU time user+sys, wall time in compare)"
        for cmd, limit in (("pass", 1.0), ("import ctypes.util", 2.0)):
            for lay in ("stock venv", "stock PYTHONPATH"):
                cpu = stats([c for _, c in times[lay, cmd]])
                wall = stats([w for w, _ in times[lay, cmd]])
                self.row(sec, f"python -c '{cmd}': {lay}", cpu, None,
                         f"(no shim; wall {fmt_ns(wall['median'])})")
            for lay in (".pth", "bootstrap", "template", "no .pyc"):
                twin = self.layouts[lay].twin
                a = stats([c for _, c in times[twin, cmd]])
                b = stats([c for _, c in times[lay, cmd]])
                added = (b["median"] - a["median"]) / 1e6
                wall = (quantile([w for w, _ in times[lay, cmd]], 0.5)
                        - quantile([w for w, _ in times[twin, cmd]], 0.5)) / 1e6
                gated = lay in TARGET_ROUTES
                pct = 100 * added * 1e6 / a["median"]
                self.row(sec, f"  + {lay}", a, b,
                         f"+{added:.2f} ms = {pct:+.1f}% (wall +{wall:.2f} ms)",
                         target=f"<{limit:g} ms" if gated else "",
                         ok=added < limit if gated else None, added_ms=added,
                         added_wall_ms=wall)

    # d: repeated calls ----------------------------------------------------------------------------

    def repeated_calls(self) -> None:
        q = self.quick
        self.log("d: repeated calls in a warm process (patched ctypes.util.find_library)")
        plan = {  # key: layout, name, loops, repeats, new_names
            "hit stock": ("stock venv", "c", 1, 10 if q else 30, False),
            "hit shim": (".pth", "c", 20000 if q else 100000, 7, False),
            "miss stock": ("stock venv", MISS, 1, 3 if q else 8, False),
            "miss shim": (".pth", MISS, 200 if q else 1000, 7, False),
            "new shim": (".pth", MISS, 100 if q else 300, 7, True),
        }
        res = {}
        for key, (lay, name, loops, repeats, new) in plan.items():
            out = self.child(lay, {"mode": "warm", "name": name, "loops": loops,
                                   "repeats": repeats, "new_names": new})
            if out["patched"] != (lay == ".pth"):
                self.notes.append(f"repeated calls: {lay} patched={out['patched']}")
            res[key] = out["ns"]
        sec = "d repeated call (warm process, through ctypes.util)"
        self.ratio_row(sec, "repeated hit 'c'", res["hit stock"], res["hit shim"], 1000)
        self.ratio_row(sec, "repeated miss", res["miss stock"], res["miss shim"], None)
        self.ratio_row(sec, "  a miss with a new name each call", res["miss stock"],
                       res["new shim"], None)

    # e: a 100,000-file directory -----------------------------------------------------------------

    def _tree(self, root: str, n: int) -> int:
        """ROOT/opt/lib with *n* entries: 50% lib*.so.* junk (not ELF), 35% other files,
        10% ELF libraries with a SONAME, 5% symlinks to them, and libtarget in 3 versions."""
        sys.path.insert(0, os.path.join(REPO, "tests"))
        import elfgen

        d = os.path.join(root, "opt", "lib")
        os.makedirs(d)
        os.makedirs(os.path.join(root, "etc"))
        with open(os.path.join(root, "etc", "ld.so.conf"), "w") as f:
            f.write("/opt/lib\n")
        n_elf, n_link, n_junk = max(1, n // 10), max(1, n // 20), n // 2
        n_data = max(0, n - n_elf - n_link - n_junk - 6)
        template = elfgen.native(soname="libhit0000000.so.1")
        for i in range(n_elf):
            name = f"libhit{i:07d}.so.1"
            with open(os.path.join(d, name), "wb") as f:
                f.write(template.replace(b"libhit0000000.so.1", name.encode()))
        for i in range(n_link):
            os.symlink(f"libhit{i:07d}.so.1", os.path.join(d, f"libhit{i:07d}.so"))
        for prefix, count in (("libjunk{:07d}.so.1.2", n_junk), ("data_{:07d}.dat", n_data)):
            for i in range(count):
                with open(os.path.join(d, prefix.format(i)), "wb") as f:
                    f.write(b"not an ELF file\n")
        for file, soname in (("libtarget.so.1.0", "libtarget.so.1"),
                             ("libtarget.so.2.3", "libtarget.so.2"),
                             ("libtarget.so.10.1", "libtarget.so.10")):
            with open(os.path.join(d, file), "wb") as f:
                f.write(elfgen.native(soname=soname))
        for link, target in (("libtarget.so.1", "libtarget.so.1.0"),
                             ("libtarget.so.10", "libtarget.so.10.1"),
                             ("libtarget.so", "libtarget.so.10")):
            os.symlink(target, os.path.join(d, link))
        return n_elf

    def scaling(self) -> None:
        import random
        import shutil

        later = 30 if self.quick else 100
        sec = "e one directory of N files (Resolver(root=ROOT), installed wheel, .pyc present)"
        rng = random.Random(5)
        small: dict = {}  # type: ignore[type-arg]
        for n in (100, 100000):
            root = os.path.join(self.tmp, f"root{n}")
            n_elf = self._tree(root, n)
            cache = os.path.join(root, "etc", "ld.so.cache")
            self.run("/sbin/ldconfig", "-X", "-r", root)
            os.rename(cache, cache + ".off")
            procs = 3 if self.quick else 9 if n == 100 else 5  # 100,000 files: ~0.3 s each
            for state in ("no cache", "cache"):
                if state == "cache":
                    os.rename(cache + ".off", cache)
                self.log(f"e: {n} files, {state}")
                cold: dict = {"hit": [], "miss": []}  # type: ignore[type-arg]
                for _ in range(procs):
                    for kind, name in (("hit", "target"), ("miss", MISS)):
                        r = self.child("install()", {"mode": "scale", "root": root,
                                                     "first": name, "misses": [], "hits": []})
                        cold[kind].append(r["ns"])
                        if (r["answer"] is None) != (kind == "miss"):
                            self.notes.append(f"scaling {n}/{state}: {name} -> {r['answer']}")
                hits = [f"hit{i:07d}" for i in rng.sample(range(n_elf), min(later, n_elf))]
                warm = self.child("install()", {"mode": "scale", "root": root, "first": MISS,
                                                "misses": [f"nosuch{i}" for i in range(later)],
                                                "hits": hits})
                if warm["later_found"] != len(hits) or warm["later_false_hits"]:
                    self.notes.append(f"scaling {n}/{state}: later hits {warm['later_found']}"
                                      f"/{len(hits)}, false hits {warm['later_false_hits']}")
                mem = self.child("install()", {"mode": "mem", "root": root, "first": MISS})
                label = f"{n:>7,} files, {state}"
                for kind in ("hit", "miss"):
                    s = stats(cold[kind])
                    big = n == 100000
                    self.row(sec, f"{label}: first {kind}", None, s,
                             target="<100 ms" if big else "",
                             ok=s["median"] < 100e6 if big else None)
                for kind, what in (("miss", "later misses"), ("hit", "later hits")):
                    s = stats(warm["later"][kind])
                    if n == 100:
                        small[state, kind] = s["median"]
                        self.row(sec, f"{label}: {what} (new names)", None, s)
                    else:
                        grow = s["median"] / small[state, kind]
                        self.row(sec, f"{label}: {what} (new names)", None, s,
                                 f"{grow:.2f}x of 100-file", target="<=1.5x of 100-file",
                                 ok=grow <= 1.5)
                self.row(sec, f"{label}: memory after first miss", None, None,
                         f"held {fmt_bytes(mem['held'])}, peak {fmt_bytes(mem['peak'])}")
            shutil.rmtree(root)

    # i: -X importtime ---------------------------------------------------------------------------

    def importtime(self) -> None:
        """Self time of every module a shim layout imports that its twin does not, by phase."""
        reps = 7 if self.quick else 21
        self.log(f"i: -X importtime, {reps} runs per layout")
        code = ("import sys\nw = sys.stderr.write\nw('@phase import ctypes.util\\n')\n"
                "import ctypes.util\n{install}w('@phase first hit\\n')\n"
                "ctypes.util.find_library('c')\nw('@phase second name (ssl)\\n')\n"
                "ctypes.util.find_library('ssl')\nw('@phase first miss\\n')\n"
                f"ctypes.util.find_library({MISS!r})\n")
        per: dict = {}  # type: ignore[type-arg]
        for lay in ("stock venv", "stock PYTHONPATH", *SHIM_ROUTES):
            layout = self.layouts[lay]
            samples: dict = {}  # type: ignore[type-arg]
            for _ in range(reps):
                self.run(layout.python, "-X", "importtime", "-c",
                         code.format(install=INSTALL if layout.install else ""), env=layout.env)
                err = self.stderr
                phase = "start-up"
                for line in err.splitlines():
                    if line.startswith("@phase "):
                        phase = line[7:]
                        continue
                    parts = line.split("|")
                    if len(parts) != 3 or not parts[0].startswith("import time:"):
                        continue
                    try:
                        self_us, cum_us = int(parts[0].split(":")[1]), int(parts[1])
                    except ValueError:
                        continue  # the header line
                    key = (phase, parts[2].strip())
                    samples.setdefault(key, []).append((self_us, cum_us))
            per[lay] = {k: (quantile([s for s, _ in v], 0.5), quantile([c for _, c in v], 0.5),
                            len(v)) for k, v in samples.items()}
        result: dict = {}  # type: ignore[type-arg]
        for lay in SHIM_ROUTES:
            twin = {m for _, m in per[self.layouts[lay].twin]}
            result[lay] = [
                {"phase": phase, "module": m, "self_us": round(s), "cum_us": round(c), "n": n}
                for (phase, m), (s, c, n) in per[lay].items()
                if m not in twin or m.startswith("ctypes_shim") or m == "sitecustomize"]
        self.extra["importtime"] = result

    # o: oracle ---------------------------------------------------------------------------------

    def oracle(self) -> None:
        import re

        out = self.run("/sbin/ldconfig", "-p")
        names: list[str] = []
        for line in out.splitlines()[1:]:
            m = re.match(r"\s+lib(.+?)\.so(?:\.|\s|$)", line)
            if m and m.group(1) not in names:
                names.append(m.group(1))
        reps = 1 if self.quick else 3
        self.log(f"o: oracle run over {len(names)} names, {reps} processes per side")
        stock, shim, answers = [], [], {}
        for _ in range(reps):
            for lay, acc in (("stock venv", stock), (".pth", shim)):
                r = self.child(lay, {"mode": "oracle", "names": names})
                acc.append(r["ns"])
                answers[lay] = r["answers"]
        diff = [(n, a, b) for n, a, b in zip(names, answers["stock venv"], answers[".pth"])
                if a != b]
        self.ratio_row("o oracle run (fresh process, first call included)",
                       f"all {len(names)} ldconfig -p names", stock, shim, None)
        self.extra["oracle"] = {"names": len(names), "agree": len(names) - len(diff),
                                "differ": [{"name": n, "stock": a, "shim": b}
                                           for n, a, b in diff]}

    # output --------------------------------------------------------------------------------------

    def table(self) -> str:
        head = ("case", "n", "stock  median [p25..p75]", "shim  median [p25..p75]",
                "compare", "target", "")
        body: list[tuple[str, ...] | str] = []
        section = None
        for r in self.rows:
            if r["section"] != section:
                section = r["section"]
                body.append(f"== {section}")
            n = (r["shim"] or r["baseline"] or {}).get("n", "")
            body.append((r["case"], str(n), fmt_stat(r["baseline"]), fmt_stat(r["shim"]),
                         r["compare"], r["target"],
                         "" if r["ok"] is None else ("PASS" if r["ok"] else "MISS")))
        cells = [b for b in body if isinstance(b, tuple)]
        widths = [max(len(head[i]), *(len(b[i]) for b in cells)) for i in range(len(head))]

        def line(row: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i in (0, 4, 5, 6) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))).rstrip()

        lines = [line(head), "-" * len(line(head))]
        lines += [b if isinstance(b, str) else line(b) for b in body]
        return "\n".join(lines)

    def summary(self) -> str:
        checked = [r for r in self.rows if r["ok"] is not None]
        missed = [r for r in checked if not r["ok"]]
        out = [f"targets: {len(checked) - len(missed)}/{len(checked)} PASS"]
        out += [f"  MISS: {r['section'].split()[0]}: {r['case'].strip()} ({r['compare']}, "
                f"target {r['target']})" for r in missed]
        return "\n".join(out)

    def importtime_table(self) -> str:
        out = []
        for lay, mods in self.extra["importtime"].items():
            out.append(f"  {lay} (vs {self.layouts[lay].twin}); self / cumulative us, medians:")
            for phase in ("start-up", "import ctypes.util", "first hit", "second name (ssl)",
                          "first miss"):
                ms = [m for m in mods if m["phase"] == phase]
                if ms:
                    total = sum(m["self_us"] for m in ms)
                    items = ", ".join(f"{m['module']} {m['self_us']}/{m['cum_us']}" for m in ms)
                    out.append(f"    {phase:<18} {total:>5} us: {items}")
        return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import platform
    import shutil
    from time import perf_counter_ns as now

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer runs (for 3.8/3.13 side runs)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write results as JSON to FILE, or instead of the table to stdout")
    p.add_argument("--wheel", help="a built ctypes_shim wheel (default: pip wheel this checkout)")
    p.add_argument("--template", default=os.path.join(REPO, "sitecustomize_template",
                                                      "sitecustomize.py"),
                   help="the sitecustomize.py to copy for the template layout")
    p.add_argument("--only", default="abcdeio", help="sections to run, e.g. --only abc")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = p.parse_args(argv)
    if not sys.platform.startswith("linux"):
        sys.stderr.write("bench.py measures Linux behaviour only\n")
        return 2
    b = Bench(args.quick, args.wheel, args.template)
    load = [os.getloadavg()[0]]
    t0 = now()
    try:
        b.setup()
        steps = {"a": b.first_calls, "b": b.first_calls, "c": b.startup, "d": b.repeated_calls,
                 "e": b.scaling, "i": b.importtime, "o": b.oracle}
        done = set()
        for key in args.only:
            if steps[key] not in done:
                steps[key]()
                done.add(steps[key])
    finally:
        if not args.keep:
            shutil.rmtree(b.tmp, ignore_errors=True)
    elapsed = (now() - t0) / 1e9
    load.append(os.getloadavg()[0])
    header = (f"ctypes_shim bench: Python {platform.python_version()} "
              f"({sys.executable}), {platform.machine()}, {os.cpu_count()} CPUs, "
              f"{'quick' if args.quick else 'full'} run, {elapsed:.0f} s, "
              f"load average {load[0]:.1f} -> {load[1]:.1f}\n"
              f"  wheel {b.extra.get('wheel')}, PYTHONDONTWRITEBYTECODE=1 in every child")
    doc = {"python": platform.python_version(), "executable": sys.executable,
           "machine": platform.machine(), "cpus": os.cpu_count(), "quick": args.quick,
           "elapsed_s": elapsed, "load": load, "rows": b.rows, "notes": b.notes, "extra": b.extra}
    if args.json and args.json != "-":
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.json == "-":
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(header)
    for where, count in b.extra.get("pyc", {}).items():
        print(f"  .pyc: {where}: {count}")
    print(f"  other .pth files in both venvs: {', '.join(b.extra.get('stock_venv_pth', []))}")
    print(b.table())
    print()
    print(b.summary())
    if "importtime" in b.extra:
        print("\n-X importtime: modules a layout adds over its stock twin, by phase")
        print(b.importtime_table())
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
