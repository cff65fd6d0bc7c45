"""A deterministic synthetic catalogue and click log for demos and tests.

The log is built so that the order of events carries signal, not just item frequency: items of
a category form a series (a user who clicked part 3 of a series tends to click part 4 or 5
next), users hold two or three interests and drift to a new one halfway through their history,
and item popularity is Zipf-shaped. So popularity is a weak baseline, co-occurrence a decent
one, and a sequence model should beat both. Item text names the category and series, so a new
item's text alone says where it belongs (cold start).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from streamrec.contracts.events import Event
from streamrec.datasets import Catalogue, EventLog

CATEGORIES = {
    "hiking": ("trail", "summit", "boots", "ridge", "canyon", "backpack", "glacier", "valley"),
    "cooking": ("recipe", "skillet", "pasta", "spice", "oven", "broth", "dough", "garlic"),
    "astronomy": ("telescope", "nebula", "comet", "orbit", "galaxy", "eclipse", "planet", "quasar"),
    "jazz": ("saxophone", "swing", "bebop", "trumpet", "improvisation", "quartet", "blues", "ballad"),
    "gardening": ("compost", "seedling", "tulip", "pruning", "soil", "greenhouse", "orchard", "mulch"),
    "cycling": ("bicycle", "pedal", "peloton", "gear", "sprint", "helmet", "criterium", "derailleur"),
    "chess": ("gambit", "endgame", "bishop", "checkmate", "opening", "rook", "pawn", "tactics"),
    "photography": ("lens", "aperture", "portrait", "shutter", "exposure", "tripod", "film", "darkroom"),
    "sailing": ("regatta", "mainsail", "harbor", "keel", "anchor", "yacht", "tide", "compass"),
    "poetry": ("sonnet", "verse", "stanza", "haiku", "rhyme", "ode", "meter", "elegy"),
    "robotics": ("servo", "actuator", "sensor", "gripper", "firmware", "lidar", "robot", "controller"),
    "baking": ("sourdough", "croissant", "yeast", "pastry", "flour", "bagel", "brioche", "icing"),
}
ADJECTIVES = ("complete", "modern", "classic", "essential", "advanced", "hidden", "quiet", "bold", "practical", "wild")
FILLER = ("guide", "notes", "stories", "ideas", "lessons", "journal", "handbook", "collection")
EVENT_WEIGHTS = {"view": 0.3, "click": 0.55, "cart": 0.1, "purchase": 0.05}
T0 = 1_600_000_000.0  # 2020-09-13: fixed so the files are byte-identical for a seed


def _catalogue(rng: np.random.Generator, n_items: int, series_len: int) -> tuple[Catalogue, np.ndarray, np.ndarray]:
    """Items, each item's category index, and each item's rank inside its category."""
    names = list(CATEGORIES)
    ids, titles, texts, cats = [], [], [], []
    cat_of = np.arange(n_items) % len(names)  # [N]
    rank = np.arange(n_items) // len(names)  # [N] position in the category's chain
    for i in range(n_items):
        name = names[cat_of[i]]
        words = CATEGORIES[name]
        series = rank[i] // series_len
        lead = words[series % len(words)]
        adj = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
        extra = rng.choice(len(words), size=3, replace=False)
        ids.append(f"it{i:05d}")
        titles.append(f"The {adj} {lead} {FILLER[series % len(FILLER)]}, part {rank[i] % series_len + 1}")
        texts.append(
            f"A {name} {FILLER[int(rng.integers(len(FILLER)))]} about {lead} and "
            + ", ".join(words[j] for j in extra)
            + f"; part of the {lead} series."
        )
        cats.append(name)
    available = [True] * n_items
    return Catalogue(ids, titles, texts, cats, available), cat_of, rank


def generate_sample(
    seed: int = 0,
    n_users: int = 400,
    n_items: int = 600,
    events_per_user: tuple[int, int] = (20, 80),
    series_len: int = 10,
) -> tuple[Catalogue, EventLog]:
    """Build a catalogue and a time-ordered click log; the same seed gives the same data."""
    rng = np.random.default_rng(seed)
    catalogue, cat_of, _ = _catalogue(rng, n_items, series_len)
    n_cats = len(CATEGORIES)
    by_cat = [np.flatnonzero(cat_of == c) for c in range(n_cats)]  # items of a category in chain order
    # Zipf popularity inside each category: chain heads are the popular entry points.
    pop = [1.0 / (1.0 + np.arange(len(items))) ** 0.8 for items in by_cat]
    pop = [p / p.sum() for p in pop]
    types = list(EVENT_WEIGHTS)
    type_p = np.array(list(EVENT_WEIGHTS.values()))
    events: list[Event] = []
    for u in range(n_users):
        user = f"u{u:05d}"
        n = int(rng.integers(events_per_user[0], events_per_user[1] + 1))
        interests = list(rng.choice(n_cats, size=int(rng.integers(2, 4)), replace=False))
        ts = T0 + float(rng.uniform(0, 30 * 86400))
        cat = interests[0]
        pos = int(rng.choice(len(by_cat[cat]), p=pop[cat]))
        for k in range(n):
            if k == n // 2:  # drift: one interest is replaced by a new one halfway through
                fresh = [c for c in range(n_cats) if c not in interests]
                interests[int(rng.integers(len(interests)))] = int(rng.choice(fresh))
            r = rng.random()
            if k > 0 and r < 0.65 and cat in interests:
                # Continue the series: the next one to three parts of the chain.
                pos = min(pos + int(rng.integers(1, 4)), len(by_cat[cat]) - 1)
            else:
                cat = int(rng.choice(interests))
                pos = int(rng.choice(len(by_cat[cat]), p=pop[cat]))
            item = catalogue.item_ids[int(by_cat[cat][pos])]
            etype = types[int(rng.choice(len(types), p=type_p))]
            events.append(Event(f"{user}-{k:04d}", user, item, etype, round(ts, 3)))
            ts += float(rng.exponential(600.0)) + 1.0
    events.sort(key=lambda ev: ev.ts)
    return catalogue, EventLog(events)


def write_sample(directory: str | Path, seed: int = 0, **kwargs: object) -> tuple[Path, Path]:
    """Write ``items.csv`` and ``events.csv`` into ``directory``; returns (items_path, events_path)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    catalogue, log = generate_sample(seed, **kwargs)  # type: ignore[arg-type]
    items_path = directory / "items.csv"
    events_path = directory / "events.csv"
    with open(items_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "title", "text", "category", "available"])
        for i, item in enumerate(catalogue.item_ids):
            w.writerow([item, catalogue.titles[i], catalogue.texts[i], catalogue.categories[i], "true"])
    with open(events_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "user_id", "item_id", "type", "ts"])
        for ev in log.events:
            w.writerow([ev.event_id, ev.user_id, ev.item_id, ev.type, f"{ev.ts:.3f}"])
    return items_path, events_path
