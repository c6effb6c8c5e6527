"""A no-change `update` against the full run, on a MELD.Raw of N clips, in one session.

Writes a benchmark corpus (`emostore demo-corpus DIR --clips N`), runs `emostore update` over
the whole MELD feature pipeline (groups meld, audio, text and vision: the full run; `--selection`
narrows it), then `update` again with
nothing changed, then once more after touching every file (stat facts change, content does
not: every file is re-hashed, nothing re-runs). Per run: wall seconds, what it ran, the bytes
the process read (`/proc/<pid>/io` read_bytes: from disk; rchar: every read call, imports and
the page cache included) and the corpus files and bytes the source observation hashed. Prints the figures and writes benchmarks/results/observe.json. Run:
    .venv/bin/python benchmarks/observe.py [--clips 1000] [--dir DIR] [--selection SEL]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "observe.json"
EMOSTORE = str(Path(sys.executable).parent / "emostore")
SELECTION = "group:meld or group:audio or group:text or group:vision"


def timed(args: list[str], cwd: Path) -> dict:
    """Run an emostore command; wall seconds, bytes it read, and its progress lines."""
    start = time.perf_counter()
    process = subprocess.Popen([EMOSTORE, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    io = {"read_bytes": 0, "rchar": 0}
    output = []
    for line in process.stdout:
        output.append(line.rstrip())
        try:
            for entry in Path(f"/proc/{process.pid}/io").read_text().splitlines():
                key, value = entry.split(": ")
                if key in io:
                    io[key] = max(io[key], int(value))
        except OSError:
            pass
    process.wait()
    if process.returncode:
        raise SystemExit(f"emostore {' '.join(args)} failed:\n" + "\n".join(output[-20:]))
    ran = [line for line in output if line.startswith("[") and ": done" in line]
    return {"seconds": round(time.perf_counter() - start, 2), "steps run": len(ran), **io, "last lines": output[-3:]}


def observed(store: Path) -> dict:
    """Files and bytes the last observation of each MELD split hashed (its record in the store)."""
    out = {}
    for path in sorted((store / "observations").glob("meld_files.*.last.json")):
        out[path.name.split(".")[1]] = json.loads(path.read_text())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--selection", default=SELECTION, help="the assets of the full run (Dagster selection)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="observe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus"
    if not (corpus / "meld").is_dir():
        subprocess.run([EMOSTORE, "demo-corpus", str(corpus), "--clips", str(args.clips)], check=True,
                       stdout=subprocess.DEVNULL)
    (work / "emostore.toml").write_text(f'[store]\nroot = "{work / "store"}"\n[corpora.meld]\nroot = "{corpus / "meld"}"\n')
    clips = sum(1 for _ in (corpus / "meld").rglob("*.mp4"))
    media_bytes = sum(p.stat().st_size for p in (corpus / "meld").rglob("*") if p.is_file())

    full = timed(["update", args.selection], work) | {"observed": observed(work / "store")}
    unchanged = timed(["update", args.selection], work) | {"observed": observed(work / "store")}
    for path in (corpus / "meld").rglob("*"):
        if path.is_file():
            os.utime(path)
    touched = timed(["update", args.selection], work) | {"observed": observed(work / "store")}
    result = {
        "clips": clips, "corpus bytes": media_bytes, "selection": args.selection,
        "full run": full, "no-change update": unchanged, "touched-only update": touched,
        "no-change / full (time)": round(unchanged["seconds"] / full["seconds"], 4),
        "no-change: corpus bytes hashed": sum(o["bytes_read"] for o in unchanged["observed"].values()),
    }
    print(json.dumps(result, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
