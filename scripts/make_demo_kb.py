#!/usr/bin/env python3
"""Generate the Voltway Electronics demo knowledge base (``kb/``) from ``scripts/demo_kb/``.

Run with the project installed (``make setup``)::

    .venv/bin/python scripts/make_demo_kb.py [--out DIR] [--data DIR]

Shop facts, taxonomy, products, templates, users and phrasings are TOML files in
``scripts/demo_kb/`` (``catalogue.toml`` documents the product records). This
program builds the catalogue and knowledge graph, users with a purchase history
and logged conversations (whose views and purchases become events too) from them.
Every random choice comes from one ``random.Random(7)`` in a fixed order, so a
re-run reproduces ``kb/`` byte for byte; a data edit shifts the draws after it.

The files go to a temporary folder next to the output and are validated by the
project's loader, ``chatrec.kb.load_kb``: on a problem every ``file:line: reason``
is printed (catalogue and template lines also name their data record), nothing is
written and the exit status is 1; otherwise each file atomically replaces its old
version. Formats: docs/formats.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import tomllib
from datetime import datetime, timedelta
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 7
N_CONVERSATIONS = 336
HISTORY = (datetime(2025, 4, 1), datetime(2025, 11, 15))  # purchases, views, ratings and returns
CONVERSATIONS = (datetime(2026, 1, 20), datetime(2026, 3, 31))
# Sizes the demo relies on (evaluation splits, ranker training); chatrec.kb accepts any size.
MIN_COUNTS = {"catalogue": 160, "templates": 45, "kg": 900, "users": 60, "events": 600, "transcripts": 320}
SLOT_RE = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")
# Product record fields (see scripts/demo_kb/catalogue.toml): required ones, optional ones with defaults.
FIELDS = {"key", "title", "category", "brand", "price", "desc"}
OPTIONAL = {"short": None, "aliases": [], "series": None, "needs": [], "attrs": {}, "tags": [], "charge_w": None,
            "compat": [], "oos": False}

# ============================================================ data files


def load_data(data_dir):
    """Every data file, with the product records in catalogue order."""
    def read(name):
        try:
            with open(os.path.join(data_dir, name), "rb") as fh:
                return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{name}: {exc}") from None

    d = SimpleNamespace(shop=read("shop.toml"), tax=read("taxonomy.toml"), users=read("users.toml"),
                        service=read("service.toml"), req=read("requests.toml"), products=[])
    tfile, catalogue = read("templates.toml"), read("catalogue.toml")
    d.templates, d.required_intents = tfile["template"], tfile["required_intents"]
    d.tpl = {t["id"]: t for t in d.templates}
    d.successors = [tuple(pair) for pair in catalogue["successors"]]
    for name in catalogue["files"]:
        declare_products(d.products, name, read(name))
    return d


def product(r, origin):
    """A product record with every field filled in; ``origin`` names where it came from."""
    missing, unknown = sorted(FIELDS - set(r)), sorted(set(r) - FIELDS - set(OPTIONAL))
    if missing or unknown:
        raise ValueError(f"{origin}: missing field(s) {missing}, unknown field(s) {unknown}")
    p = {**OPTIONAL, **r, "origin": origin}
    p["compat_spec"] = list(p.pop("compat"))
    return dict(p, aliases=list(p["aliases"]), needs=list(p["needs"]), attrs=dict(p["attrs"]), tags=set(p["tags"]))


def declare_products(products, name, f):
    """Append one product file's items: devices, phone cases, screen protectors, accessories, games."""
    def short(key):
        for p in products:
            if p["key"] == key:
                return p["short"]
        raise KeyError(f"{name}: unknown device {key!r}")

    def slug(text):
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")

    products += [product(r, f"{name} (device {r.get('key')})") for r in f.get("device", [])]
    for i, row in enumerate(f.get("phone_case", []), start=1):
        d, style = short(row["phone"]), f["case_style"][row["style"]]
        attrs = dict(style["attrs"], color=row["color"], style=row["style"])
        if "MagSafe" in row["line"] or "MagFit" in row["line"]:
            attrs["magsafe_compatible"] = True
        products.append(product(dict(
            key=f"case-{row['phone']}-{slug(row['brand'] + ' ' + row['line'])}", category="phone-cases",
            title=f"{row['brand']} {row['line']} for {d}", brand=row["brand"], price=row["price"],
            desc=style["desc"].format(device=d), compat=[row["phone"]], needs=style["needs"], attrs=attrs,
            oos=row.get("oos", False)), f"{name} (phone_case row {i})"))
    lines = {(pl["brand"], pl["line"]): pl for pl in f.get("protector_line", [])}
    for i, row in enumerate(f.get("screen_protector", []), start=1):
        d, pl = short(row["phone"]), lines[(row["brand"], row["line"])]
        products.append(product(dict(
            key=f"sp-{row['phone']}-{slug(row['brand'])}", category="screen-protectors",
            title=f"{row['brand']} {row['line']} Screen Protector for {d}", brand=row["brand"],
            price=row["price"], desc=pl["desc"].format(device=d), compat=[row["phone"]], needs=["protection"],
            attrs=pl["attrs"], oos=row.get("oos", False)), f"{name} (screen_protector row {i})"))
    products += [product(r, f"{name} (accessory {r.get('key')})") for r in f.get("accessory", [])]
    for g in f.get("game", []):
        products.append(product(dict(
            key=g["key"], title=g["title"], category="video-games", brand=g["brand"], price=g["price"],
            desc=g["desc"], compat=[g["platform"]], needs=g["needs"],
            attrs={"platform": short(g["platform"]), "esrb": g["esrb"], "format": "Physical"}),
            f"{name} (game {g['key']})"))


def data_problems(d):
    """What chatrec.kb cannot know: the taxonomy's vocabulary, unique aliases (docs/formats.md
    promises them) and the intents the demo must answer."""
    parents, needs, owner = d.tax["category_parent"], set(d.tax["needs"]), {}
    leaves = set(parents) - set(parents.values())
    p = [f"{r['origin']}: category {r['category']!r} is not a leaf of taxonomy.toml's tree"
         for r in d.products if r["category"] not in leaves]
    p += [f"{r['origin']}: need {n!r} is not in taxonomy.toml"
          for r in d.products for n in r["needs"] if n not in needs]
    p += [f"{r['origin']}: alias {a!r} is also {owner[a]}'s"
          for r in d.products for a in r["aliases"] if owner.setdefault(a, r["key"]) != r["key"]]
    intents = {t["intent"] for t in d.templates}
    return p + [f"templates.toml: no template for intent {i!r}" for i in d.required_intents if i not in intents]


def fill(text, **values):
    """Put values into ``{name}`` placeholders; others (``{L}``, ``{All}``) stay for later."""
    return SLOT_RE.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


# ============================================================ catalogue, knowledge graph, templates


def resolve_group(spec, devices, groups):
    """'@qi' -> keys of devices with that tag; '@charge:65' -> USB-PD devices needing <= 65 W."""
    name = spec[1:]
    if name.startswith("charge:"):
        watts = int(name.split(":", 1)[1])
        return [d["key"] for d in devices if d["charge_w"] is not None and d["charge_w"] <= watts]
    if name not in groups:
        raise ValueError(f"unknown compatibility group {spec}")
    g = groups[name]
    return [d["key"] for d in devices
            if d["category"] == g.get("category", d["category"]) and ("tag" not in g or g["tag"] in d["tags"])]


class Catalogue:
    """The product records plus lookups used by every generator."""

    def __init__(self, data, rng):
        keys = [p["key"] for p in data.products]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate product keys: {dupes}")
        self.device_categories = data.tax["device_categories"]
        self.items = [dict(p, id=f"VW-{1001 + i}") for i, p in enumerate(data.products)]
        self.by_key = {r["key"]: r for r in self.items}
        self.devices = [r for r in self.items if self.is_device(r)]
        for r in self.items:
            r["compat"] = []
            for spec in r["compat_spec"]:
                for k in (resolve_group(spec, self.devices, data.tax["groups"]) if spec.startswith("@") else [spec]):
                    if k not in self.by_key:
                        raise ValueError(f"{r['origin']}: unknown compatible device {k}")
                    if k not in r["compat"]:
                        r["compat"].append(k)
        for r in self.items:
            r["stock"] = 0 if r["oos"] else rng.randint(3, 40) if self.is_device(r) else rng.randint(6, 180)
        self.compatible = {d["key"]: [r["key"] for r in self.items if d["key"] in r["compat"]] for d in self.devices}
        self.successor_of = dict(data.successors)

    def is_device(self, r):
        return r["category"] in self.device_categories

    def get(self, key):
        return self.by_key[key]

    def in_stock(self, r):
        return r["stock"] > 0

    def row(self, r):
        """The public catalogue.jsonl object for one record."""
        return {"id": r["id"], "title": r["title"], "description": r["desc"], "category": r["category"],
                "brand": r["brand"], "price": r["price"], "stock": r["stock"], "attributes": r["attrs"],
                "aliases": r["aliases"]}


def build_triples(cat, data):
    t = set()
    for r in cat.items:
        t.add((r["id"], "brand", f"brand:{r['brand']}"))
        t.add((r["id"], "category", f"category:{r['category']}"))
        t.update((r["id"], "suits_need", f"need:{n}") for n in r["needs"])
        if r["series"]:
            t.add((r["id"], "in_series", f"series:{r['series']}"))
        t.update((r["id"], "compatible_with", cat.get(k)["id"]) for k in r["compat"])
    t.update((f"category:{c}", "subcategory_of", f"category:{p}") for c, p in data.tax["category_parent"].items())
    used = {r["category"] for r in cat.items}
    t.update((f"category:{a}", "accessory_of", f"category:{dc}")
             for a, dev_cats in data.tax["accessory_of"].items() if a in used for dc in dev_cats)
    t.update((cat.get(new)["id"], "successor_of", cat.get(old)["id"]) for new, old in data.successors)
    return sorted(t)


def fill_template(data, tid, values):
    """Render a template like the runtime does: given values, then shop facts, then defaults.
    A slot with no value stays as it is, for chatrec.kb to report against the template."""
    def val(m):
        if values.get(m.group(1)):
            return str(values[m.group(1)])
        return str(data.shop.get(m.group(1), data.tpl[tid].get("slots", {}).get(m.group(1), m.group(0))))
    return SLOT_RE.sub(val, data.tpl[tid]["text"])


# ============================================================ users and their history


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:00Z")


def rand_dt(rng, start, end):
    """A random minute between two datetimes, during waking hours."""
    d = start + timedelta(days=rng.randint(0, max((end - start).days, 0)))
    return d.replace(hour=rng.randint(7, 22), minute=rng.randint(0, 59))


class UserState:
    """What a user owns over time; drives events and conversations."""

    def __init__(self, row, devices):
        self.row, self.id, self.first_name = row, row["id"], row["name"].split()[0]
        self.devices = list(devices)  # device keys, in purchase order
        self.owned, self.returned = [], []  # item keys currently owned (purchased, not returned); returned
        self.purchases = []  # (key, datetime)
        prefs = row["preferences"]
        self.liked, self.disliked = prefs.get("brands_liked", []), prefs.get("brands_disliked", [])
        self.budget, self.interests = prefs.get("budget"), prefs.get("interests", [])

    def owns(self, key):
        return key in self.owned

    def phone(self, cat):
        return next((cat.get(k) for k in self.devices if cat.get(k)["category"] == "smartphones"), None)


def build_users(rng, cat, data):
    cfgs, names = data.users["segments"], data.users["names"]
    seg_names = [s for s in cfgs for _ in range(len(names) // len(cfgs))]
    rng.shuffle(seg_names)
    users = []
    for i, name in enumerate(names):
        seg = seg_names[i]
        cfg = cfgs[seg]
        phone = rng.choice(cfg["phones"])
        devices = [phone]
        for group in cfg["groups"]:
            if rng.random() >= group["p"] or len(devices) >= 3:
                continue
            expanded = []
            for k in group["pool"]:
                expanded += data.users["watches_for_phone_brand"][cat.get(phone)["brand"]] if k == "watch" else [k]
            options = [k for k in expanded if k not in devices]
            if options:
                devices.append(rng.choice(options))
        interests = cfg["interests"] + rng.sample(cfg["optional"], rng.randint(1, 2))
        device_brands = [cat.get(k)["brand"] for k in devices]
        liked = [cat.get(phone)["brand"]]
        liked += [b for b in rng.sample(cfg["brands"], rng.randint(1, 2)) if b not in liked]
        pool = [b for b in data.users["dislike_pool"] if b not in liked and b not in device_brands]
        roll = rng.random()
        disliked = rng.sample(pool, 2 if roll < 0.3 else 1) if roll < 0.75 else []
        lo, hi = cfg["budget"]
        prefs = {"brands_liked": liked} | ({"brands_disliked": disliked} if disliked else {})
        prefs |= {"budget": rng.randint(lo // 25, hi // 25) * 25, "interests": interests}
        row = {"id": f"U{i + 1:03d}", "name": name, "segment": seg, "location": rng.choice(data.users["cities"]),
               "preferences": prefs}
        users.append(UserState(row, devices))
    return users


def pref_score(rng, u, r, cat, noise=1.5):
    """How much a user likes an item (shared by events and conversations)."""
    s = 1.5 * len(set(r["needs"]) & set(u.interests))
    if r["brand"] in u.liked:
        s += 2.0
    if r["brand"] in {cat.get(k)["brand"] for k in u.devices}:
        s += 1.0
    return s + rng.random() * noise


def fits_user_devices(r, u):
    """Device-specific items must fit one of the user's devices; universal items always fit."""
    return not r["compat"] or any(k in u.devices for k in r["compat"])


def watch_ok(r, u, cat):
    """Smartwatches must work with the user's phone platform."""
    ww = r["attrs"].get("works_with")
    if r["category"] not in ("smartwatches", "fitness-trackers") or not ww or u.phone(cat) is None:
        return True
    return ("iPhone" if u.phone(cat)["brand"] == "Apple" else "Android") in ww


class EventLog:
    def __init__(self):
        self.rows = []

    def add(self, u, r, kind, when, rating=None):
        row = {"user_id": u.id, "item_id": r["id"], "type": kind, "ts": ts(when)}
        self.rows.append(row if rating is None else dict(row, rating=rating))

    def buy(self, u, r, when):
        self.add(u, r, "purchase", when)
        u.purchases.append((r["key"], when))
        if r["key"] not in u.owned:
            u.owned.append(r["key"])

    def sorted_rows(self):
        order = {"view": 0, "purchase": 1, "rating": 2, "return": 3}
        return sorted(self.rows, key=lambda e: (e["ts"], e["user_id"], order[e["type"]], e["item_id"]))


def history_events(rng, cat, users, log, prior):
    """Purchases, views, ratings and returns before the conversation period."""
    start, end = HISTORY

    def buy(u, r, when):
        view_alternatives(rng, cat, u, r, when, log)
        log.buy(u, r, when)
        bought.append((r, when))

    for u in users:
        bought = []  # (record, datetime)
        for k in u.devices:
            buy(u, cat.get(k), rand_dt(rng, start, end))
        # accessories for the devices
        dev_when = {r["key"]: w for r, w in bought}
        cands = [r for r in cat.items if not cat.is_device(r) and r["compat"]
                 and any(k in u.devices for k in r["compat"]) and r["price"] <= max(u.budget, 120)
                 and r["brand"] not in u.disliked]
        scored = sorted(cands, key=lambda r: -(pref_score(rng, u, r, cat, 2.0) + prior.get(r["category"], 0)))
        n_acc, seen_cats = rng.randint(1, 3), set()
        for r in scored:
            if len(seen_cats) >= n_acc:
                break
            if r["category"] not in seen_cats:
                seen_cats.add(r["category"])
                base = max(dev_when[k] for k in r["compat"] if k in dev_when)
                buy(u, r, base + timedelta(days=rng.randint(0, 25), minutes=rng.randint(5, 600)))
        # something for one or two interests
        for need in rng.sample(u.interests, min(2, len(u.interests))):
            if rng.random() > 0.6:
                continue
            cands = [r for r in cat.items if not cat.is_device(r) and need in r["needs"]
                     and fits_user_devices(r, u) and r["price"] <= u.budget and not u.owns(r["key"])
                     and r["brand"] not in u.disliked]
            if cands:
                r = max(cands, key=lambda r: pref_score(rng, u, r, cat, 3.0))
                buy(u, r, rand_dt(rng, start, end))
        # browsing
        browse = [r for r in cat.items if not u.owns(r["key"]) and fits_user_devices(r, u)
                  and set(r["needs"]) & set(u.interests)]
        for r in rng.sample(browse, min(len(browse), rng.randint(2, 5))):
            log.add(u, r, "view", rand_dt(rng, start, end))
        # one return for some users, then ratings
        returned = None
        accessories = [(r, w) for r, w in bought if not cat.is_device(r)]
        if accessories and rng.random() < 0.2:
            returned = rng.choice(accessories)
            r, w = returned
            back = w + timedelta(days=rng.randint(3, 20))
            if rng.random() < 0.6:
                log.add(u, r, "rating", back - timedelta(hours=2), rating=rng.choice([1, 2, 2]))
            log.add(u, r, "return", back)
            u.owned.remove(r["key"])
            u.returned.append(r["key"])
        for r, w in bought:
            if (not returned or r is not returned[0]) and rng.random() < 0.55:
                stars = rng.choice([3, 4, 5, 5, 5] if cat.is_device(r) else [4, 5, 5] if r["brand"] in u.liked
                                   else [2, 3, 4, 4, 5, 5])
                log.add(u, r, "rating", w + timedelta(days=rng.randint(4, 30)), rating=stars)


def view_alternatives(rng, cat, u, r, when, log):
    """Views before a purchase: the item itself and maybe a same-category alternative."""
    log.add(u, r, "view", when - timedelta(minutes=rng.randint(3, 90)))
    alts = [a for a in cat.items if a["category"] == r["category"] and a is not r
            and (not r["compat"] or set(a["compat"]) & set(r["compat"]))]
    if alts and rng.random() < 0.7:
        log.add(u, rng.choice(alts), "view", when - timedelta(hours=rng.randint(2, 72)))


# ============================================================ conversations


def mention(r):
    """How the agent names an item: exact catalogue title and price."""
    return f"the {r['title']} (${r['price']:.2f})"


def join_list(parts):
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def nice_budget(cands, budgets):
    """A round 'under $X' that keeps at least two candidates, or None if it wouldn't constrain."""
    prices = sorted(r["price"] for r in cands)
    if len(prices) >= 3:
        for x in budgets:
            if x >= prices[1]:
                return x if x < prices[-1] else None
    return None


def weighted_choice(rng, weights):
    keys = sorted(weights)
    x = rng.random() * sum(weights[k] for k in keys)
    for k in keys:
        x -= weights[k]
        if x <= 0:
            return k
    return keys[-1]


class ConversationBuilder:
    """Builds one logged conversation for a user and records its side-effect events."""

    def __init__(self, rng, cat, data, u, started, log):
        self.rng, self.cat, self.data, self.u, self.started, self.log = rng, cat, data, u, started, log
        self.S, self.R, self.A = data.service, data.req, data.req["agent"]  # phrasings
        self.turns, self.order_id, self.minute = [], None, 0
        self.name = u.first_name if rng.random() < 0.6 else None

    # -- turn helpers
    def tick(self):
        self.minute += self.rng.randint(1, 3)
        return self.started + timedelta(minutes=self.minute)

    def user(self, text):
        self.turns.append({"role": "user", "text": text})

    def agent(self, text, intent, template_id=None, recommended=None):
        t = {"role": "agent", "text": text, "intent": intent}
        if template_id:
            t["template_id"] = template_id
        if recommended:
            t["recommended"], t["accepted"] = [r["id"] for r in recommended], []
            when = self.tick()
            for r in recommended:
                self.log.add(self.u, r, "view", when)
        self.turns.append(t)
        return t

    def templated(self, tid, extra="", recommended=None, **values):
        text = fill_template(self.data, tid, dict(values, customer_name=self.name))
        return self.agent(text + " " + extra if extra else text, self.data.tpl[tid]["intent"], tid, recommended)

    def add_to_cart(self, r):
        self.templated(self.rng.choice(["add_to_cart_confirm", "add_to_cart_confirm_express"]), item_title=r["title"])

    def lead(self, lead, text):
        """Prefix a connective ("also, ") and lower-case the sentence start after it."""
        if lead and text[:1].isupper() and not text.startswith(("I ", "I'")):
            text = text[0].lower() + text[1:]
        return lead + text

    def style(self, text):
        """Customer phrasing: random case, a dropped '?' and the odd typo; placeholders stay intact."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.25:
            text = text.lower().rstrip("?!.")
        elif roll < 0.6 and text[:1].isalpha():
            text = text[0].upper() + text[1:]
        if rng.random() < 0.12:
            words = text.split(" ")
            idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha() and w.islower()]
            if idx:
                i = rng.choice(idx)
                w = words[i]
                j = rng.randint(1, len(w) - 3)
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
                text = " ".join(words)
        return text

    def new_order_id(self):
        if self.order_id is None:
            self.order_id = f"#VW-{self.rng.randint(10000, 99999)}"
        return self.order_id

    def say_item(self, r):
        """How the customer names an item: an alias or the (possibly lower-cased) title."""
        if r["aliases"] and self.rng.random() < 0.65:
            return self.rng.choice(r["aliases"])
        return r["title"].lower() if self.rng.random() < 0.4 else r["title"]

    def can_buy(self, r):
        """Users own at most three devices, so a fourth device is never bought."""
        return not self.cat.is_device(r) or len(self.u.devices) < 3

    def buy(self, r):
        self.log.buy(self.u, r, self.tick() + timedelta(minutes=self.rng.randint(2, 8)))
        if self.cat.is_device(r):
            self.u.devices.append(r["key"])

    # -- service
    def service(self, intent, lead="", follow_up=False):
        if intent in ("product_availability", "product_compatibility"):
            return self.availability(lead) if intent == "product_availability" else self.compatibility(lead)
        phrases = self.S["phrases"][intent]
        if follow_up:
            phrases = [p for p in phrases if p[1] != "track_order_ask_id"]
        if not self.u.purchases:
            phrases = [p for p in phrases if "{item}" not in p[0]]
        text, tid = self.rng.choice(phrases)
        values, fmt = {}, {}
        if "{order}" in text:
            fmt["order"] = values["order_id"] = self.new_order_id()
        elif self.order_id and follow_up:
            values["order_id"] = self.order_id
        if "{item}" in text:  # something bought recently (not a device, to exchange)
            keys = [k for k, _ in self.u.purchases
                    if intent != "exchange_item" or not self.cat.is_device(self.cat.get(k))]
            r = self.cat.get(self.rng.choice(keys[-4:]))
            fmt["item"], values["item_title"] = self.say_item(r), r["title"]
        self.user(self.lead(lead, self.style(text).format(**fmt)))
        if tid == "track_order_ask_id":
            self.templated(tid)
            oid = self.new_order_id()
            self.user(self.rng.choice(self.S["order_id_replies"]).format(order=oid))
            tid, values = "track_order_status", {"order_id": oid}
        self.templated(tid, **values)

    def availability(self, lead):
        cat, u, rng = self.cat, self.u, self.rng
        oos = [r for r in cat.items if not cat.in_stock(r)]
        related = [r for r in cat.items if cat.in_stock(r) and not u.owns(r["key"])
                   and (r["compat"] and fits_user_devices(r, u) or set(r["needs"]) & set(u.interests))]
        r = rng.choice(oos) if rng.random() < 0.45 else rng.choice(related)
        pool = self.S["availability"] + (self.S["availability_out_of_stock"] if not cat.in_stock(r) else [])
        self.user(self.lead(lead, self.style(rng.choice(pool)).format(x=self.say_item(r))))
        self.log.add(u, r, "view", self.tick())
        if cat.in_stock(r):
            self.templated("availability_in_stock", item_title=r["title"])
            if rng.random() < 0.3 and len(self.turns) <= 6 and self.can_buy(r):
                self.user(self.style(rng.choice(self.S["buy_now"])))
                self.add_to_cart(r)
                self.buy(r)
            return
        alt, why = self.alternative_for(r)
        extra = fill(self.A["out_of_stock_alternative"], item=mention(alt), why=why) if alt else ""
        self.offer("availability_out_of_stock", r, alt, extra, 0.35)

    def alternative_for(self, r):
        """An in-stock stand-in for an out-of-stock item, personalised to the user's devices."""
        cat, u = self.cat, self.u
        cands = [a for a in cat.items if a["category"] == r["category"] and a is not r and cat.in_stock(a)
                 and not u.owns(a["key"]) and watch_ok(a, u, cat)]
        for key in self.data.tax["alternative_must_match"]:
            if key in r["attrs"]:
                cands = [a for a in cands if a["attrs"].get(key) == r["attrs"][key]]
        if r["compat"]:
            cands = [a for a in cands if set(a["compat"]) & set(r["compat"])]
        else:
            cands = [a for a in cands if 0.5 * r["price"] <= a["price"] <= 1.6 * r["price"]]
        if not cands:
            return None, ""
        alt = max(cands, key=lambda a: pref_score(self.rng, u, a, cat)
                  + 2.0 * bool(set(a["compat"]) & set(u.devices)) + (a["brand"] == r["brand"]))
        if r["compat"]:
            shared = [k for k in alt["compat"] if k in r["compat"]]
            mine = [k for k in shared if k in u.devices]
            return alt, fill(self.A["alternative_fits"], device=cat.get((mine or shared)[0])["short"])
        return alt, self.A["alternative_similar"]

    def offer(self, tid, r, alt, extra, p):
        """Answer about ``r`` with template ``tid``, suggest ``alt`` if any; the customer may take it."""
        turn = self.templated(tid, extra=extra, recommended=[alt] if alt else None, item_title=r["title"])
        if (alt and self.rng.random() < p and len(self.turns) <= 6 and alt["brand"] not in self.u.disliked
                and self.can_buy(alt)):
            self.user(self.style(self.rng.choice(self.S["take_alternative"])))
            self.add_to_cart(alt)
            turn["accepted"] = [alt["id"]]
            self.buy(alt)

    def compatibility(self, lead):
        cat, u, rng = self.cat, self.u, self.rng
        devs = [k for k in u.devices if cat.compatible[k]]
        if not devs:
            return self.availability(lead)
        d = cat.get(rng.choice(devs))
        c = rng.choice(sorted({cat.get(k)["category"] for k in cat.compatible[d["key"]]}))
        yes = [cat.get(k) for k in cat.compatible[d["key"]] if cat.get(k)["category"] == c]
        no = [r for r in cat.items if r["category"] == c and r["compat"] and d["key"] not in r["compat"]]
        fits = not no or rng.random() < 0.5
        a = rng.choice(yes if fits else no)
        text = rng.choice(self.S["compatibility"])
        a_name = a["title"].lower() if rng.random() < 0.4 else a["title"]
        self.user(self.lead(lead, self.style(text).format(a=a_name, d=self.say_item(d))))
        if fits:
            self.templated("compatibility_yes", item_title=a["title"])
            return
        alts = [r for r in yes if cat.in_stock(r) and not u.owns(r["key"])]
        alt = max(alts, key=lambda r: pref_score(rng, u, r, cat)) if alts else None
        extra = fill(self.A["incompatible_alternative"], device=d["short"], item=mention(alt)) if alt else ""
        self.offer("compatibility_no", a, alt, extra, 0.4)

    # -- recommendation
    def candidates_ok(self, r):
        return self.cat.in_stock(r) and not self.u.owns(r["key"]) and r["key"] not in self.u.returned

    def budget_text(self, budget):
        return fill(self.rng.choice(self.R["budget_phrases"]), x=budget) if budget else ""

    def request(self):
        """Pick a feasible recommendation request: dict(text, cands, intro, tail, device, ...)."""
        first = self.rng.choice([k for k, n in self.R["request_kinds"].items() for _ in range(n)])
        for kind in [first] + [k for k in ("accessory", "need", "upgrade", "gift") if k != first]:
            req = getattr(self, "req_" + kind)()
            if req:
                return req
        return None

    def req_accessory(self):
        cat, u, rng = self.cat, self.u, self.rng
        options = []
        for k in u.devices:
            by_cat = {}
            for r in map(cat.get, cat.compatible[k]):
                if self.candidates_ok(r):
                    by_cat.setdefault(r["category"], []).append(r)
            for c, rs in sorted(by_cat.items()):
                if len(rs) >= 2 and c in self.R["category_words"]:
                    fit = sum(bool(set(r["needs"]) & set(u.interests)) for r in rs) / len(rs)
                    options.append((1 + self.data.users["category_prior"].get(c, 0) + fit, k, c, rs))
        if not options:
            return None
        x = rng.random() * sum(w for w, *_ in options)
        for w, k, c, rs in options:
            x -= w
            if x <= 0:
                break
        d = cat.get(k)
        phrasing = rng.choice(self.R["accessory_requests"])
        budget = nice_budget(rs, self.R["nice_budgets"]) if "{b}" in phrasing and rng.random() < 0.45 else None
        if budget:
            rs = [r for r in rs if r["price"] <= budget]
        sing, plural = self.R["category_words"][c]
        btxt = self.budget_text(budget)
        text = self.style(phrasing.replace("{b}", "<b>"))
        text = text.format(c=sing, cp=plural, d=self.say_item(d)).replace("<b>", btxt)
        intro = fill(rng.choice(self.A["accessory_intros"]), plural=plural, device=d["short"])
        if budget:
            tail = fill(self.A["budget_tail"], budget=budget)
        else:
            tail = fill(rng.choice(self.A["accessory_tails"]), device=d["short"])
        return dict(text=text, cands=rs, intro=intro, tail=tail, device=d)

    def req_need(self):
        cat, u, rng = self.cat, self.u, self.rng
        feasible = []
        for nr in self.R["need_request"]:
            c, need = nr["category"], nr["need"]
            if c in cat.device_categories and any(cat.get(k)["category"] == c for k in u.devices):
                continue  # already owns one: that would be an upgrade request instead
            rs = [r for r in cat.items if r["category"] == c and need in r["needs"] and self.candidates_ok(r)
                  and fits_user_devices(r, u) and watch_ok(r, u, cat)]
            if len(rs) >= 2:
                feasible.append((need, nr, rs))
        mine = [f for f in feasible if f[0] in u.interests]
        pool = mine if mine and rng.random() < 0.8 else feasible
        if not pool:
            return None
        _, nr, rs = rng.choice(pool)
        budget = None
        if rng.random() < 0.5:
            budget = nice_budget(rs, self.R["nice_budgets"])
        elif (nr["category"] not in cat.device_categories and u.budget
              and len([r for r in rs if r["price"] <= u.budget]) >= 2):
            rs = [r for r in rs if r["price"] <= u.budget]  # the agent knows the profile budget
        if budget:
            rs = [r for r in rs if r["price"] <= budget]
        btxt = self.budget_text(budget)
        text = self.style(rng.choice(nr["phrasings"]).replace("{b}", "<b>")).replace("<b>", btxt)
        intro = fill(rng.choice(self.A["need_intros"]), purpose=nr["purpose"])
        tail = fill(self.A["budget_tail"], budget=budget) if budget else ""
        return dict(text=text, cands=rs, intro=intro, tail=tail, device=None)

    def req_gift(self):
        cat, u, rng = self.cat, self.u, self.rng
        persona, need = rng.choice(self.R["gift_personas"])
        cap = min(u.budget or 200, rng.choice(self.R["gift_budgets"]))
        rs = [r for r in cat.items if r["category"] in self.R["gift_categories"] and need in r["needs"]
              and self.candidates_ok(r) and r["price"] <= cap]
        if len(rs) < 2:
            return None
        btxt = self.budget_text(cap)
        tmpl = rng.choice(self.R["gift_requests"]).replace("{b}", "<b>")
        text = self.style(tmpl).format(r=rng.choice(self.R["gift_relations"]), p=persona).replace("<b>", btxt)
        intro = fill(self.A["gift_intro"], persona=persona, budget=cap)
        return dict(text=text, cands=rs, intro=intro, tail="", device=None, diverse=True)

    def req_upgrade(self):
        cat, u, rng = self.cat, self.u, self.rng
        options = []
        for d in map(cat.get, u.devices):
            rs = [r for r in cat.items if r["category"] == d["category"] and r is not d and self.candidates_ok(r)
                  and r["price"] >= 0.75 * d["price"] and watch_ok(r, u, cat)]
            if len(rs) >= 2:
                options.append((d, rs))
        if not options:
            return None
        d, rs = rng.choice(options)
        text = self.style(rng.choice(self.R["upgrade_requests"])).format(d=self.say_item(d))
        succ = [r for r in rs if cat.successor_of.get(r["key"]) == d["key"]]
        tail = fill(self.A["successor_tail"], title=succ[0]["title"], device=d["short"]) if succ else ""
        return dict(text=text, cands=rs, intro=fill(self.A["upgrade_intro"], device=d["short"]), tail=tail,
                    device=d, successor=succ)

    def rank(self, req, cands):
        succ = {r["key"] for r in req.get("successor", [])}
        dev_brand = req["device"]["brand"] if req.get("device") else None
        bonus = {r["id"]: 3.0 * (r["key"] in succ) + 1.0 * (r["brand"] == dev_brand) for r in cands}
        scored = [(pref_score(self.rng, self.u, r, self.cat) + bonus[r["id"]], r["id"], r) for r in cands]
        return [r for _, _, r in sorted(scored, key=lambda x: (-x[0], x[1]))]

    def pick(self, req, ranked, k):
        """The top k; for gifts, one per category first."""
        if not req.get("diverse"):
            return ranked[:k]
        out = []
        for r in ranked:
            if r["category"] not in {o["category"] for o in out}:
                out.append(r)
        return (out + [r for r in ranked if r not in out])[:k]

    def recommend_again(self, shown, leads, lead_one, **values):
        """The agent's second list, after the customer narrowed the first one down."""
        text = fill(self.rng.choice(leads), **values)
        text = fill(lead_one, **values) if len(shown) == 1 else text
        return self.agent(text.replace("{L}", join_list([mention(r) for r in shown])), "recommend_product",
                          recommended=shown)

    def recommend(self, lead="", max_turns=6):
        rng, u, A = self.rng, self.u, self.A
        req = self.request()
        if req is None:
            return False
        self.user(self.lead(lead, req["text"]))
        ranked = self.rank(req, req["cands"])
        shown = self.pick(req, ranked, min(len(ranked), rng.choice([2, 3, 3, 4])))
        text = req["intro"].replace("{L}", join_list([mention(r) for r in shown]))
        personal = self.personal_note(shown, req)
        tail = req["tail"].replace("{All}", A["both_are"] if len(shown) == 2 else A["all_are"])
        text = " ".join([text] + [extra for extra in (tail, personal) if extra])
        turn = self.agent(text, "recommend_product", recommended=shown)
        left = max_turns - 2
        # follow-up: avoid a brand, or ask for cheaper
        bad = [r["brand"] for r in shown if r["brand"] in u.disliked]
        if left >= 2 and (bad or rng.random() < 0.3):
            if bad:
                brand = bad[0]
                rest = [r for r in ranked if r["brand"] != brand]
                if rest:
                    same = shown[0]["brand"] == brand and rng.random() < 0.5
                    self.user(self.style(rng.choice(self.R["not_that_brand" if same else "not_brand"])).format(b=brand))
                    shown = rest[:rng.choice([2, 3])]
                    turn = self.recommend_again(shown, A["other_brands"], A["other_brands_one"], brand=brand)
                    left -= 2
            else:
                floor = min(r["price"] for r in shown)
                cheaper = [r for r in ranked if r["price"] < floor]
                if cheaper:
                    self.user(self.style(rng.choice(self.R["cheaper"])))
                    shown = cheaper[:rng.choice([1, 2, 3])]
                    turn = self.recommend_again(shown, A["cheaper"], A["cheaper_one"])
                    left -= 2
        if left >= 2:
            liked = [r for r in shown if r["brand"] not in u.disliked and self.can_buy(r)]
            if liked and rng.random() < 0.6:
                choice = max(liked, key=lambda r: pref_score(rng, u, r, self.cat, 1.0))
                self.user(self.style(rng.choice(self.R["accept"])).format(r=self.refer(choice, shown)))
                self.add_to_cart(choice)
                turn["accepted"] = [choice["id"]]
                self.buy(choice)
            elif rng.random() < 0.5:
                self.user(self.style(rng.choice(self.R["decline"])))
                self.templated("thanks_reply_short")
        return True

    def refer(self, r, shown):
        """How the customer points at one of the shown items."""
        if [s["brand"] for s in shown].count(r["brand"]) == 1 and self.rng.random() < 0.6:
            return fill(self.R["refer_brand"], brand=r["brand"])
        if self.rng.random() < 0.5:
            return self.R["ordinals"][shown.index(r)]
        return r["title"].lower() if self.rng.random() < 0.5 else r["title"]

    def personal_note(self, shown, req):
        """Mention an owned device when the top pick shares its ecosystem (brand)."""
        top = shown[0]
        if req.get("device") or top["compat"]:
            return ""  # device-specific items are already matched to the user's devices
        for d in map(self.cat.get, self.u.devices):
            if d["brand"] == top["brand"] and not self.cat.is_device(top):
                return fill(self.A["personal_note"], title=top["title"], device=d["short"])
        return ""

    # -- whole conversations
    def service_weights(self, product_questions=True):
        w = {k: self.S["default_weight"] for k in self.S["phrases"]} | self.S["weights"]
        return {k: v for k, v in w.items()
                if product_questions or k not in ("product_availability", "product_compatibility")}

    def service_conversation(self):
        rng = self.rng
        if rng.random() < 0.15:
            self.user(self.style(rng.choice(self.S["greetings"])))
            self.templated("greeting_welcome")
        intent = weighted_choice(rng, self.service_weights())
        self.service(intent)
        if intent in self.S["follow_ups"] and len(self.turns) <= 6 and rng.random() < 0.35:
            nxt = rng.choice(self.S["follow_ups"][intent])
            if nxt not in ("product_availability", "product_compatibility"):
                self.service(nxt, lead=rng.choice(self.S["follow_up_leads"]), follow_up=True)
        if len(self.turns) <= 6 and self.turns[-1]["role"] == "agent" and rng.random() < 0.4:
            self.user(self.style(rng.choice(self.S["thanks"])))
            self.templated(rng.choice(["thanks_reply", "thanks_reply_short"]))

    def both_conversation(self):
        self.service(weighted_choice(self.rng, self.service_weights(product_questions=False)))
        return self.recommend(lead=self.rng.choice(self.R["both_leads"]), max_turns=8 - len(self.turns))

    def row(self, cid):
        return {"conversation_id": cid, "user_id": self.u.id, "started_at": ts(self.started), "turns": self.turns}


def build_transcripts(rng, cat, data, users, log):
    plan = []
    order = list(users)
    rng.shuffle(order)
    for i in range(N_CONVERSATIONS):
        u = order[i] if i < len(order) else rng.choice(users)
        roll = rng.random()
        kind = "service" if roll < 0.5 else "recommend" if roll < 0.85 else "both"
        plan.append((rand_dt(rng, *CONVERSATIONS), u.id, kind, u))
    plan.sort(key=lambda p: (p[0], p[1]))
    rows = []
    for n, (when, _, kind, u) in enumerate(plan, start=1):
        conv = ConversationBuilder(rng, cat, data, u, when, log)
        ok = conv.recommend() if kind == "recommend" else conv.both_conversation() if kind == "both" else False
        if not ok:  # no feasible request: a plain service conversation instead
            if kind != "service":
                conv = ConversationBuilder(rng, cat, data, u, when, log)
            conv.service_conversation()
        rows.append(conv.row(f"C{n:04d}"))
    return rows


# ============================================================ generating, validating, writing


def generate(data):
    """Every KB file's rows, drawing from one random generator in a fixed order."""
    rng = random.Random(SEED)
    cat = Catalogue(data, rng)
    users = build_users(rng, cat, data)
    log = EventLog()
    history_events(rng, cat, users, log, data.users["category_prior"])
    transcripts = build_transcripts(rng, cat, data, users, log)
    templates = [{"id": t["id"], "intent": t["intent"], "text": t["text"], "slots": t.get("slots", {})}
                 for t in data.templates]
    return {"catalogue": [cat.row(r) for r in cat.items], "templates": templates, "kg": build_triples(cat, data),
            "users": [u.row for u in users], "events": log.sorted_rows(), "transcripts": transcripts}, cat


def write_kb(folder, data, rows):
    texts = {"shop.json": json.dumps(data.shop, ensure_ascii=False, indent=2) + "\n",
             "kg.tsv": "".join(f"{s}\t{p}\t{o}\n" for s, p, o in [("subject", "predicate", "object")] + rows["kg"])}
    for name in ("catalogue", "templates", "users", "events", "transcripts"):
        texts[f"{name}.jsonl"] = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows[name])
    for name, text in texts.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)


def explain(error, tmp, origins):
    """A chatrec.kb problem without the temporary folder and, where known, with its data record."""
    error = error.replace(tmp + os.sep, "")
    m = re.match(r"(catalogue|templates)\.jsonl:(\d+):", error)
    if m and int(m.group(2)) <= len(origins[m.group(1)]):
        error += f"  <- {origins[m.group(1)][int(m.group(2)) - 1]}"
    return error


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "kb"),
                    help="output folder (default: kb/ at the repository root)")
    ap.add_argument("--data", default=os.path.join(HERE, "demo_kb"), help="data folder (default: scripts/demo_kb/)")
    args = ap.parse_args(argv)
    try:
        from chatrec.kb import KBError, load_kb
    except ImportError as exc:
        print(f"make_demo_kb: chatrec must be installed to validate the KB (make setup): {exc}", file=sys.stderr)
        return 2
    out = os.path.abspath(args.out)
    try:
        data = load_data(args.data)
        problems = data_problems(data)
        if not problems:
            rows, cat = generate(data)
            problems = [f"{name}: {len(rows[name])} rows, need at least {n}"
                        for name, n in MIN_COUNTS.items() if len(rows[name]) < n]
    except (KeyError, ValueError, OSError) as exc:
        problems = [str(exc) if type(exc) is ValueError else f"generation failed: {exc!r}"]
    if problems:
        print(f"make_demo_kb: {len(problems)} problem(s) in {args.data}, nothing written:", file=sys.stderr)
        print("\n".join("  " + p for p in problems), file=sys.stderr)
        return 1

    # Write next to the output (same file system, so os.replace is atomic) and let chatrec.kb judge.
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=os.path.dirname(out))
    try:
        write_kb(tmp, data, rows)
        try:
            load_kb(tmp)
        except KBError as exc:
            origins = {"catalogue": [r["origin"] for r in cat.items],
                       "templates": [f"templates.toml (template {t['id']})" for t in data.templates]}
            print(f"make_demo_kb: chatrec.kb rejects the generated KB, nothing written to {out}:", file=sys.stderr)
            more = f"\n  ... and {len(exc.errors) - 50} more" if len(exc.errors) > 50 else ""
            print("\n".join("  " + explain(e, tmp, origins) for e in exc.errors[:50]) + more, file=sys.stderr)
            return 1
        os.makedirs(out, exist_ok=True)
        for name in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, name), os.path.join(out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    oos = sum(1 for r in rows["catalogue"] if r["stock"] == 0)
    print(f"{out}: {len(rows['catalogue'])} items ({oos} out of stock), {len(rows['templates'])} templates, "
          f"{len(rows['kg'])} triples, {len(rows['users'])} users, {len(rows['events'])} events, "
          f"{len(rows['transcripts'])} conversations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
