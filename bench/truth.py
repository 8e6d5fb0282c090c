"""Score truth benchmark: does each way of weighting activities tell who stays?

    .venv/bin/python bench/truth.py [--products photos,crm,devtool] [--seeds 1,2,3,4,5] [--users 600] [--days 240]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/engagement .venv/bin/python bench/truth.py ...

Each (product, seed) is a synthetic tenant with a planted truth
(bench/truth_worlds.py: valuable users who stay, busy users with many log-ins
and email opens who mostly leave, fading, casual, returning and new users),
sent through the ingestion service (wire.normalize + events.services.ingest)
into its own database (a fresh SQLite file, or `engagement_truth_bench` on the
PostgreSQL server of DATABASE_URL). For horizons of 60 and 90 days it prints
the AUC, on the later snapshot days the fit never saw, of:

  (a) naive    every activity 1 point, no cap (volume);
  (b) survey   the survey proposal's formula on a simulated team survey;
  (c) fitted   insights.truth.fit_weights, then the real engine's snapshots of
               that draft (a backtest: computed and rolled back);
  (d) ceiling  an unconstrained logistic regression on richer features (counts,
               active days and recent active days per activity);
  (e) gbm      gradient-boosted trees on those features plus the window before
               (trend) and days since last seen: an estimate of how much any
               model can tell from the history, on the same out-of-time split;
  (f) acc      the account-level fit (fit_weights(subject="accounts"): members'
               summed counts, account stayed = a member active h days later),
               judged out of time on its own later days, and acc/u the
               user-level fitted points ranking the same accounts on those days.

and the fitted draft's tier order, busy and valuable users' mean points, and
the time the fit and the backtest take. Targets (issue 16): fitted AUC >= 0.75
at 60 days and >= 0.85 at 90, within 0.03 of the ceiling, busy < valuable.

A second table judges the model's falling flag (the default rule unless
--drop-pct / --trend-days say otherwise) on the survey's draft (no half-life)
and on the fitted one, on the same held-out days: the share of falling and
other users who stayed (Wilson 95% intervals), the AUC of the points alone
(flag off), with every falling user demoted below the others, and of the
points plus the flag weighed by a logistic regression on the fit's latest
training days (insights.truth.compare_falling), and the page's verdict.
Worlds marked "held out" were never run while the fit was built.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "engagement_truth_bench"
# What the fit was developed on; everything else is held out.
SEEN = {("photos", 1), ("crm", 1)}
HORIZONS = (60, 90)
TARGETS = {60: 0.75, 90: 0.85}
FLAG_COLUMNS = ("survey", "fitted")  # whose falling flag the second table judges


def setup(url: str | None) -> None:
    if url and url.startswith("postgres"):
        import psycopg

        admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
        os.environ["DATABASE_URL"] = urlunsplit(urlsplit(url)._replace(path=f"/{BENCH_DB}"))
    else:
        path = Path(tempfile.gettempdir()) / "engagement-truth-bench.sqlite3"
        path.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engagement_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load_world(world, tenant):
    from django.utils import timezone

    from bench.truth_worlds import iter_batches
    from events import wire
    from events.services import ingest

    stored = 0
    for raws in iter_batches(world, 1000):
        now = timezone.now()
        messages = [wire.normalize(raw, kind="batch", received_at=now, batch_sent_at=None) for raw in raws]
        good = [m for m in messages if isinstance(m, wire.Message)]
        assert len(good) == len(messages), [m for m in messages if not isinstance(m, wire.Message)][:3]
        ingest(tenant=tenant, messages=good)
        stored += len(good)
    return stored


def survey_points(world, tenant) -> dict[int, int]:
    """The survey proposal's formula (surveys.services) on the simulated answers."""
    from events.models import Activity
    from surveys.services import event_shares, points_for, rarity_for_share

    shares = event_shares(tenant=tenant)
    by_name = {a.name: a for a in Activity.objects.for_tenant(tenant)}
    points = {}
    for name in world.activities:
        ratings = [r["ratings"].get(name) for r in world.survey]
        ratings = [r for r in ratings if r is not None]
        activity = by_name.get(name)
        if activity is None or not ratings:
            continue
        p = points_for(statistics.mean(ratings), rarity_for_share(shares.get(activity.pk, 0.0)))
        if p > 0:
            points[activity.pk] = p
    return points


def ceiling_auc(history, train, held_out, window) -> float | None:
    """An unconstrained logistic regression on richer features: the most these features can say."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from insights.truth import auc, window_features

    def features(snap):
        t = snap.offset
        parts = [window_features(history, t, window=window),
                 window_features(history, t, window=window, cap=1),
                 window_features(history, t, window=14, cap=1)]
        return np.log1p(np.hstack(parts)[snap.members])

    x = np.vstack([features(s) for s in train])
    y = np.concatenate([s.stayed for s in train])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)).fit(x, y)
    values = [auc(clf.decision_function(features(s)), s.stayed) for s in held_out]
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 3) if values else None


def bound_auc(history, train, held_out, window) -> float | None:
    """A flexible model (gradient-boosted trees) on everything the rollup shows, trend and recency included.

    Not a score a product could publish: an estimate, on the same out-of-time split, of how much
    any model can tell from this history. When the fitted points sit near it, what is left is in
    the world (leavers who show nothing yet), not in the score's form.
    """
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from insights.truth import auc, window_features

    def features(snap):
        t = snap.offset
        seen = history.day <= t
        last = np.full(len(history.users), -10_000)
        np.maximum.at(last, history.user_index[seen], history.day[seen])
        parts = [window_features(history, t, window=window),
                 window_features(history, t, window=window, cap=1),
                 window_features(history, t, window=14, cap=1),
                 window_features(history, t - window, window=window, cap=1),  # the window before: trend
                 (t - last)[:, None]]
        return np.log1p(np.hstack(parts)[snap.members].astype(float))

    x = np.vstack([features(s) for s in train])
    y = np.concatenate([s.stayed for s in train])
    clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0).fit(x, y)
    values = [auc(clf.predict_proba(features(s))[:, 1], s.stayed) for s in held_out]
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 3) if values else None


def run_world(product: str, seed: int, users: int, days: int, flag: dict | None = None) -> list[dict]:
    from django.contrib.auth import get_user_model

    from accounts.services import tenant_create
    from bench.truth_worlds import generate_world
    from events.models import EndUser
    from insights import truth

    owner = get_user_model().objects.create_user(email=f"owner-{product}-{seed}@bench.test", password=None)
    tenant = tenant_create(owner=owner, name=f"{product} {seed}", product_name=product, time_zone="UTC")
    start = tenant.today() - timedelta(days=days)
    t0 = time.perf_counter()
    world = generate_world(product, seed, users=users, days=days, start=start)
    events = load_world(world, tenant)
    load_s = time.perf_counter() - t0
    history = truth.load_history(tenant)
    accounts = truth.account_history(tenant, history)
    user_ids = dict(EndUser.objects.for_tenant(tenant).values_list("pk", "user_id"))
    rows = []
    for horizon in HORIZONS:
        window = 30
        t0 = time.perf_counter()
        fit = truth.fit_weights(tenant, horizon=horizon, window=window, history=history)
        fit_s = time.perf_counter() - t0
        if not fit.ok:
            rows.append({"product": product, "seed": seed, "h": horizon, "error": fit.readiness.message})
            continue
        snaps = {d: truth.snapshot(history, d, window=window, horizon=horizon) for d in fit.train_days + fit.eval_days}
        candidates = {
            "naive": ({a: 1 for a in history.activities}, {"daily_cap": None, "half_life_days": None}),
            "survey": (survey_points(world, tenant), {"daily_cap": None, "half_life_days": None}),
            "fitted": (fit.points, {"daily_cap": fit.daily_cap, "half_life_days": fit.half_life_days}),
        }
        result = {"product": product, "seed": seed, "h": horizon, "events": events, "load_s": load_s,
                  "fit_s": fit_s, "cap": fit.daily_cap, "half_life": fit.half_life_days,
                  "held_out": (product, seed) not in SEEN}
        for name, (points, fields) in candidates.items():
            t0 = time.perf_counter()
            # The falling flag of the survey's (no half-life) and the fitted draft (the fit's half-life) is
            # weighed on the fit's latest training days, as on the page; their time includes those engine days.
            extra = {"train_days": fit.train_days[-truth.MAX_FLAG_TRAIN_DAYS:], **(flag or {})} \
                if name in FLAG_COLUMNS else {}
            bt = truth.backtest_points(tenant, points, horizon=horizon, days=fit.eval_days, history=history,
                                       window_days=window, **fields, **extra)
            result[f"{name}_s"] = time.perf_counter() - t0
            result[name] = bt.mean_auc
            if name in FLAG_COLUMNS:
                result[f"flag_{name}"] = bt.falling_check
            if name == "fitted":
                result["order"] = bt.in_order
                result["tiers"] = {t.tier: t.share for t in bt.tiers}
                result["verdict"] = bt.verdict.level
                means = {"busy": [], "valuable": []}
                for day in fit.eval_days:
                    for end_user_id, (points, _tier) in bt.scores.get(day, {}).items():
                        kind = world.user_type.get(user_ids.get(end_user_id))
                        if kind in means:
                            means[kind].append(points)
                result["busy_mean"] = round(statistics.mean(means["busy"]), 1) if means["busy"] else None
                result["valuable_mean"] = round(statistics.mean(means["valuable"]), 1) if means["valuable"] else None
        result["fit_eval"] = fit.eval_auc
        account_fit = truth.fit_weights(tenant, horizon=horizon, window=window, history=history, subject="accounts",
                                        accounts=accounts)
        result["acc"] = account_fit.eval_auc if account_fit.ok else None
        result["acc_u"] = truth.points_on_accounts(history, accounts, fit, account_fit.eval_days) \
            if account_fit.ok else None
        result["acc_n"] = f"{account_fit.readiness.users}/{account_fit.readiness.left}"
        result["ceiling"] = ceiling_auc(history, [snaps[d] for d in fit.train_days],
                                        [snaps[d] for d in fit.eval_days], window)
        result["bound"] = bound_auc(history, [snaps[d] for d in fit.train_days],
                                    [snaps[d] for d in fit.eval_days], window)
        rows.append(result)
    return rows


def verdict_of(row) -> str:
    problems = []
    if row.get("fitted") is None or row["fitted"] < TARGETS[row["h"]]:
        problems.append(f"AUC<{TARGETS[row['h']]}")
    if row.get("ceiling") is not None and row.get("fitted") is not None and row["fitted"] < row["ceiling"] - 0.03:
        problems.append("far from ceiling")
    if row.get("busy_mean") is not None and row.get("valuable_mean") is not None and \
            row["busy_mean"] >= row["valuable_mean"]:
        problems.append("busy>=valuable")
    if row.get("order") is False:
        problems.append("tiers out of order")
    return "ok" if not problems else ", ".join(problems)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", default="photos,crm,devtool")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--drop-pct", type=int, default=None, help="falling rule: points down by (default: model's)")
    parser.add_argument("--trend-days", type=int, default=None, help="falling rule: compare with (default: model's)")
    args = parser.parse_args()
    flag = {k: v for k, v in (("falling_drop_pct", args.drop_pct), ("trend_days", args.trend_days)) if v is not None}
    setup(os.environ.get("DATABASE_URL"))
    from django.db import connection

    print(f"database: {connection.vendor}; users per world {args.users}, {args.days} days of history")
    header = (f"{'world':<12} {'set':<8} {'h':>3} {'events':>7} {'naive':>6} {'survey':>6} {'fitted':>6} "
              f"{'ceil':>6} {'gbm':>6} {'cap':>4} {'hl':>4} {'order':>5} {'busy':>7} {'valu.':>7} {'fit s':>6} "
              f"{'bt s':>5} {'acc':>6} {'acc/u':>6} {'acc n/left':>10}  verdict")
    print(header)
    all_rows = []
    for product in args.products.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for row in run_world(product, seed, args.users, args.days, flag):
                all_rows.append(row)
                if "error" in row:
                    print(f"{product}-{seed:<5} {row['h']:>3} {row['error']}")
                    continue
                print(f"{product + '-' + str(seed):<12} {'held out' if row['held_out'] else 'seen':<8} "
                      f"{row['h']:>3} {row['events']:>7} {row['naive']:>6} {row['survey']:>6} {row['fitted']:>6} "
                      f"{row['ceiling']:>6} {row['bound']:>6} {str(row['cap']):>4} {str(row['half_life']):>4} "
                      f"{str(row['order']):>5} {row['busy_mean']:>7} {row['valuable_mean']:>7} "
                      f"{row['fit_s']:>6.2f} {row['fitted_s']:>5.2f} {str(row['acc']):>6} {str(row['acc_u']):>6} "
                      f"{row['acc_n']:>10}  {verdict_of(row)}", flush=True)
    good = [r for r in all_rows if "error" not in r]
    for horizon in HORIZONS:
        for label, keep in (("seen", False), ("held out", True)):
            rows = [r for r in good if r["h"] == horizon and r["held_out"] == keep]
            if rows:
                print(f"mean h={horizon} {label:<8}: " + "  ".join(
                    f"{k} {statistics.mean(r[k] for r in rows):.3f}"
                    for k in ("naive", "survey", "fitted", "ceiling", "bound"))
                    + f"  ({sum(verdict_of(r) == 'ok' for r in rows)}/{len(rows)} meet every target)")
    print_flags(good)
    return 0


def _share(cohort) -> str:
    if cohort is None or not cohort.n:
        return "—"
    low, high = cohort.interval
    return f"{cohort.share:.1f}% [{low:.0f}-{high:.0f}]"


def print_flags(rows: list[dict]) -> None:
    """The falling flag of the survey's and the fitted draft, on the held-out days: on (demoted, weighed)
    against off (the points alone)."""
    checks = [(r, name, r[f"flag_{name}"]) for r in rows for name in FLAG_COLUMNS if r.get(f"flag_{name}")]
    if not checks:
        return
    first = checks[0][2]
    print(f"\nfalling flag (down {first.drop_pct}% on {first.trend_days} days earlier) of the survey's draft (no "
          "half-life) and the fitted one, judged on the held-out days; weighed on the fit's last training days")
    print(f"{'world':<12} {'set':<8} {'h':>3} {'model':<6} {'falling':>7} {'stayed if falling':>18} "
          f"{'stayed if not':>18} {'off':>6} {'demote':>6} {'+flag':>6} {'gain':>7} {'weight':>6} {'better':>6} "
          f"{'w.fall':>6}  verdict")
    for r, name, c in checks:
        figures = (f"{str(c.score_auc):>6} {str(c.demoted_auc):>6} {str(c.combined_auc):>6} "
                   f"{(f'{c.gain:+.3f}' if c.gain is not None else '—'):>7} {str(c.flag_weight):>6} "
                   f"{f'{c.days_better}/{len(c.eval_days)}':>6} {c.train_falling:>6}")
        print(f"{r['product'] + '-' + str(r['seed']):<12} {'held out' if r['held_out'] else 'seen':<8} {r['h']:>3} "
              f"{name:<6} {(c.falling.n if c.falling else 0):>7} {_share(c.falling):>18} {_share(c.steady):>18} "
              f"{figures}  {c.level}")
    for name in FLAG_COLUMNS:
        for horizon in HORIZONS:
            judged = [c for r, n, c in checks if n == name and r["h"] == horizon and c.combined_auc is not None]
            if judged:
                levels = ", ".join(f"{lv} {sum(c.level == lv for c in judged)}"
                                   for lv in ("adds", "nothing", "reversed"))
                print(f"mean h={horizon} {name:<6}: off {statistics.mean(c.score_auc for c in judged):.3f}  demote "
                      f"{statistics.mean(c.demoted_auc for c in judged):.3f}  +flag "
                      f"{statistics.mean(c.combined_auc for c in judged):.3f}  ({levels}; of {len(judged)} judged)")


if __name__ == "__main__":
    sys.exit(main())
