"""The curve of scripts/bench/shared_curve.sh: episodes per tool of ONE teacher run with shared memory.

``cut OUT``: which passes of the run in OUT/run finished (every explored tool has the pass's episode with all
its slots, and every judgeable trial of it and the passes before is judged), and for each such pass k writes
OUT/k<k>.jsonl, the run's export (OUT/run.jsonl) cut to the exemplars made from episodes < k (a paraphrase goes
with its original); prints the k's, one a line.
``yield OUT``: per pass, the teacher's trials, those the judge accepted and every check kept, and those whose request
is close (MiniLM cosine >= 0.85) to one the same tool was asked in an earlier pass that was not kept: how often the
explorer asks again what already failed (long-term memory's job).
``compare OUT[=LABEL]...``: docs/bench/shared_yield.{json,png}: the pass yield of each run side by side.
``report OUT [NAME]``: docs/bench/NAME.json and .png (NAME: shared_curve): per point the teacher's wall time up to the end of that
pass's judging, the approved exemplars as cut and as rechecked, the student's scores, and the items gained and
lost against the point before (one-sided sign test); beside it session 32's pooled curve and the best zero-shot.
usage: shared_curve.py cut|yield|report OUT [NAME] | compare OUT[=LABEL]..."""

import json
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

BEST = "retrieval-search-among-candidates-constrained"


def trial_episode(trial_id: str) -> int:
    return int(trial_id.rsplit(":", 2)[1])


def run_trials(out: Path) -> list:
    """Every trial of the teacher run in OUT/run."""
    from ste_mcp.memory.db import open_db
    from ste_mcp.memory.trials import TrialStore

    return TrialStore(open_db(str(out / "run" / "lancedb"))).trials()


def passes(trials: list) -> list[dict]:
    """The finished passes of the run, each with its end (seconds from the first trial's start)."""
    start = min(t.started_at for t in trials)
    tools = {t.tool for t in trials if t.episode == 0}
    slots: dict[tuple[str, int], int] = defaultdict(int)
    for t in trials:
        slots[t.tool, t.episode] += 1
    per_episode = max(t.slot for t in trials) + 1
    finished, end = [], start
    for episode in range(max(t.episode for t in trials) + 1):
        mine = [t for t in trials if t.episode == episode]
        if any(slots[tool, episode] < per_episode for tool in tools):
            break
        if any(t.judgeable and not t.verdict for t in mine):
            break
        moments = [t.recorded_at for t in mine]
        moments += [
            datetime.fromisoformat(t.verdict["judged_at"])
            for t in mine
            if t.verdict and "judged_at" in t.verdict
        ]
        end = max(end, *moments)
        finished.append({"episodes": episode + 1, "wall_s": round((end - start).total_seconds())})
    return finished


def cut(out: Path) -> None:
    lines = (out / "run.jsonl").read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    for point in passes(run_trials(out)):
        k = point["episodes"]
        kept = [r for r in rows if max(map(trial_episode, r["provenance"]["trial_ids"])) < k]
        text = [json.dumps({**header, "exemplars": len(kept)})] + [json.dumps(r) for r in kept]
        (out / f"k{k}.jsonl").write_text("\n".join(text) + "\n")
        print(k)


def kept(verdict: dict | None) -> bool:
    return bool(verdict and verdict.get("accepted") and "refused" not in verdict)


def pass_yield(trials: list) -> list[dict]:
    """Per finished pass: trials, accepted by the judge, kept, and asked again after an earlier pass failed."""
    import numpy as np

    from ste_mcp.memory.embeddings import get_embedder

    vectors = dict(zip([t.id for t in trials], get_embedder().embed([t.query for t in trials]), strict=True))
    rows = []
    for point in passes(trials):
        episode = point["episodes"] - 1
        mine = [t for t in trials if t.episode == episode]
        again = 0
        for t in mine:
            failed = [u for u in trials if u.tool == t.tool and u.episode < episode and not kept(u.verdict)]
            if any(float(np.dot(vectors[t.id], vectors[u.id])) >= 0.85 for u in failed):
                again += 1
        rows.append(
            {
                "pass": episode + 1,
                "trials": len(mine),
                "judge_accepted": sum(bool(t.verdict and t.verdict.get("accepted")) for t in mine),
                "kept": sum(kept(t.verdict) for t in mine),
                "asked_again_after_failure": again,
                "tools_kept": len({t.tool for t in mine if kept(t.verdict)}),
            }
        )
    return rows


def print_yield(out: Path) -> None:
    for row in pass_yield(run_trials(out)):
        print(json.dumps(row))


def compare(*outs: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {label: pass_yield(run_trials(Path(out))) for out, _, label in (o.partition("=") for o in outs)}
    Path("docs/bench/shared_yield.json").write_text(json.dumps(runs, indent=1) + "\n")
    fig, (kept_ax, again_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, rows) in enumerate(runs.items()):
        xs = [r["pass"] for r in rows]
        kept_ax.plot(xs, [r["kept"] for r in rows], marker="o", color=f"C{i}", label=name)
        again_ax.plot(xs, [r["asked_again_after_failure"] for r in rows], marker="o", color=f"C{i}")
        print(name, json.dumps(rows))
    kept_ax.set_ylabel("trials kept (judge + every check)")
    again_ax.set_ylabel("requests close to an earlier failed one")
    for ax in (kept_ax, again_ax):
        ax.set_xlabel("pass (one episode of 2 trials per tool, 13 tools)")
        ax.set_ylim(bottom=0)
        ax.xaxis.get_major_locator().set_params(integer=True)
    kept_ax.legend(fontsize=8)
    fig.suptitle(
        "What each pass of a teacher run keeps, and how often it asks again what failed", fontsize=10
    )
    fig.tight_layout()
    fig.savefig("docs/bench/shared_yield.png", dpi=110)
    print("docs/bench/shared_yield.png")


def counts(rows: list[dict]) -> dict:
    return {
        "approved": sum(r["variant_of"] is None for r in rows),
        "approved_with_paraphrases": len(rows),
        "tools": len({r["tool"] for r in rows}),
    }


def rechecked(pool: Path) -> dict:
    from ste_mcp.memory.db import open_db
    from ste_mcp.memory.exemplars import ExemplarStore

    kept = ExemplarStore(open_db(str(pool / "lancedb"))).find(status="approved")
    return counts([{"variant_of": e.variant_of, "tool": e.tool} for e in kept])


def answers(out: Path, k: int, bench: str) -> dict[str, bool]:
    lines = (out / f"runs-k{k}-{bench}" / BEST / "scores.jsonl").read_text().splitlines()
    return {s["id"]: s["correct"] for s in map(json.loads, lines)}


def report(out: Path, name: str = "shared_curve") -> None:
    from ste_mcp.memory.gate import sign_p

    keep = ("n", "wellformed", "api_match", "correct", "strict_correct")
    points, trials = [], run_trials(out)
    for point in passes(trials):
        k = point["episodes"]
        if not (out / f"runs-k{k}-dev" / BEST / "summary.json").exists():
            break
        rows = [json.loads(line) for line in (out / f"k{k}.jsonl").read_text().splitlines()[1:]]
        point |= {
            "cpu_hours": round(point["wall_s"] * 2 / 3600, 2),
            "cut": counts(rows),
            "rechecked": rechecked(out / f"pool-k{k}"),
        }
        for bench in ("ste50", "dev"):
            summary = json.loads((out / f"runs-k{k}-{bench}" / BEST / "summary.json").read_text())
            point[bench] = {key: summary.get(key) for key in keep}
            if points:
                ours, before = answers(out, k, bench), answers(out, k - 1, bench)
                gained = sum(1 for i in before if ours[i] and not before[i])
                lost = sum(1 for i in before if before[i] and not ours[i])
                point[bench]["vs_previous"] = {
                    "gained": gained,
                    "lost": lost,
                    "p_loss": round(sign_p(lost, gained), 3),
                    "p_gain": round(sign_p(gained, lost), 3),
                }
        points.append(point)
        print(k, point["wall_s"], point["rechecked"], point["ste50"]["correct"], point["dev"]["correct"])
    for point, passed in zip(points, pass_yield(trials), strict=False):
        point["pass_yield"] = passed
    Path(f"docs/bench/{name}.json").write_text(json.dumps(points, indent=1) + "\n")
    plot(points, name)


def plot(points: list[dict], name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pooled = json.loads(Path("docs/bench/episodes_curve.json").read_text())
    zero = pooled[0]
    fig, (by_episode, by_hour) = plt.subplots(1, 2, figsize=(11, 4.2))
    for bench, label, color in (("ste50", "195 STE-50 toolbox items", "C0"), ("dev", "bench/dev (65)", "C1")):
        xs = [0] + [p["episodes"] for p in points]
        hours = [0] + [p["cpu_hours"] for p in points]
        ys = [zero[bench]["correct"]] + [p[bench]["correct"] for p in points]
        by_episode.plot(xs, ys, marker="o", color=color, label=f"{label}: one run, shared memory")
        by_hour.plot(hours, ys, marker="o", color=color, label=f"{label}: one run, shared memory")
        px = [p["episodes"] for p in pooled]
        py = [p[bench]["correct"] for p in pooled]
        by_episode.plot(
            px,
            py,
            marker="x",
            linestyle="--",
            color=color,
            alpha=0.5,
            label=f"{label}: pooled 1-episode runs (session 32)",
        )
        by_hour.plot([p["cpu_hours"] for p in pooled], py, marker="x", linestyle="--", color=color, alpha=0.5)
        for x, y in zip(xs, ys, strict=True):
            by_episode.annotate(
                f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8
            )
    by_episode.set_xlabel("teacher episodes per tool (0: best zero-shot prompt)")
    by_hour.set_xlabel("teacher CPU-hours (2 cores × wall, to the end of each pass's judging)")
    for ax in (by_episode, by_hour):
        ax.set_ylabel("correct % (0.5B, best setting, constrained)")
        ax.set_ylim(0, 100)
        ax.axhline(58, color="#999999", linestyle=":", linewidth=1)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("One teacher run with shared memory, cut after each pass, against pooled runs", fontsize=10)
    fig.tight_layout()
    fig.savefig(f"docs/bench/{name}.png", dpi=110)
    print(f"docs/bench/{name}.png")


if __name__ == "__main__":
    if sys.argv[1] == "compare":
        compare(*sys.argv[2:])
    else:
        {"cut": cut, "yield": print_yield, "report": report}[sys.argv[1]](Path(sys.argv[2]), *sys.argv[3:])
