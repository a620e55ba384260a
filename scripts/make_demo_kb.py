#!/usr/bin/env python3
"""Generate the Voltway Electronics demo knowledge base (``kb/``) from the data in ``scripts/demo_kb/``.

Run with the project installed (``make setup``): ``.venv/bin/python scripts/make_demo_kb.py [--out DIR] [--data DIR]``

The TOML data holds the shop facts, taxonomy, products (``catalogue.toml`` documents the records), templates,
users, phrasings and the generator's settings. From it this program builds the catalogue and knowledge graph,
users with a purchase history and logged conversations, whose views and purchases become events too. Every
random choice comes from one seeded ``random.Random`` in a fixed order, so a re-run reproduces ``kb/`` byte for
byte; a data edit shifts the draws after it. The files are written to a temporary folder next to the output and
validated by ``chatrec.kb.load_kb``: on a problem every ``file:line: reason`` is printed (catalogue and template
lines also name their data record), nothing is written and the exit status is 1; otherwise each file atomically
replaces its old version. Formats: docs/formats.md.
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
from datetime import timedelta
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
TS_FORMAT = "%Y-%m-%dT%H:%M:00Z"
SLOT_RE = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")
# Product record fields (see scripts/demo_kb/catalogue.toml): required ones, optional ones with defaults.
FIELDS = {"key", "title", "category", "brand", "price", "desc"}
OPTIONAL = dict(short=None, aliases=[], series=None, needs=[], attrs={}, tags=[], charge_w=None, compat=[], oos=False)
# Service intents answered from the catalogue rather than from service.toml's [phrases].
PRODUCT_QUESTIONS = ("product_availability", "product_compatibility")

# ============================================================ data files


def load_data(data_dir):
    """Every data file, with the product records in catalogue order."""

    def read(name):
        try:
            with open(os.path.join(data_dir, name), "rb") as fh:
                return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{name}: {exc}") from None

    d = SimpleNamespace(shop=read("shop.toml"), tax=read("taxonomy.toml"), users=read("users.toml"))
    d.service, d.req, d.gen = read("service.toml"), read("requests.toml"), read("generator.toml")
    tfile, catalogue = read("templates.toml"), read("catalogue.toml")
    d.templates, d.required_intents = tfile["template"], tfile["required_intents"]
    d.tpl = {t["id"]: t for t in d.templates}
    d.successors, d.products = catalogue["successors"], []
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
    """Append one product file's items: devices, phone cases, screen protectors, then accessories."""

    def short(key):
        for p in products:
            if p["key"] == key:
                return p["short"]
        raise KeyError(f"{name}: unknown device {key!r}")

    def slug(text):
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")

    def for_phone(kind, i, row, look, key, title, **attrs):
        """A phone_case or screen_protector row; ``look`` (its style or line) has desc, needs and attrs."""
        d = short(row["phone"])
        r = dict(key=key, category=kind.replace("_", "-") + "s", title=f"{title} for {d}", brand=row["brand"])
        r |= dict(price=row["price"], compat=[row["phone"]], oos=row.get("oos", False), needs=look["needs"])
        r |= dict(desc=look["desc"].format(device=d), attrs=look["attrs"] | attrs)
        products.append(product(r, f"{name} ({kind} row {i})"))

    products += [product(r, f"{name} (device {r.get('key')})") for r in f.get("device", [])]
    for i, row in enumerate(f.get("phone_case", []), start=1):
        brand_line, style = f"{row['brand']} {row['line']}", f["case_style"][row["style"]]
        magsafe = {"magsafe_compatible": True} if "MagSafe" in row["line"] or "MagFit" in row["line"] else {}
        key = f"case-{row['phone']}-{slug(brand_line)}"
        for_phone("phone_case", i, row, style, key, brand_line, color=row["color"], style=row["style"], **magsafe)
    lines = {(pl["brand"], pl["line"]): pl for pl in f.get("protector_line", [])}
    for i, row in enumerate(f.get("screen_protector", []), start=1):
        line, key = lines[(row["brand"], row["line"])], f"sp-{row['phone']}-{slug(row['brand'])}"
        for_phone("screen_protector", i, row, line, key, f"{row['brand']} {row['line']} Screen Protector")
    products += [product(r, f"{name} (accessory {r.get('key')})") for r in f.get("accessory", [])]


def data_problems(d):
    """What chatrec.kb cannot know: the taxonomy's vocabulary, unique product keys and aliases
    (docs/formats.md promises them), the intents the demo must answer and users that split evenly into segments."""
    parents, needs, owner, p = d.tax["category_parent"], set(d.tax["needs"]), {}, []
    leaves = set(parents) - set(parents.values())
    for r in d.products:
        o, k = r["origin"], r["key"]
        if r["category"] not in leaves:
            p.append(f"{o}: category {r['category']!r} is not a leaf of taxonomy.toml's tree")
        p += [f"{o}: need {n!r} is not in taxonomy.toml" for n in r["needs"] if n not in needs]
        p += [f"{o}: alias {a!r} is also {owner[a]}'s" for a in r["aliases"] if owner.setdefault(a, k) != k]
    keys = [r["key"] for r in d.products]
    p += [f"catalogue.toml: product key {k!r} is used more than once" for k in sorted(set(keys)) if keys.count(k) > 1]
    intents = {t["intent"] for t in d.templates}
    p += [f"templates.toml: no template for intent {i!r}" for i in d.required_intents if i not in intents]
    n, segments = len(d.users["names"]), len(d.users["segments"])
    return p + ([f"users.toml: {n} names do not split evenly into {segments} segments"] if n % segments else [])


def fill(text, **values):
    """Put values into ``{name}`` placeholders; others (``{L}``, ``{All}``) stay for later."""
    return SLOT_RE.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


def weighted_choice(rng, pairs):
    """One item of ``(item, weight)`` pairs, with a single draw."""
    x = rng.random() * sum(w for _, w in pairs)
    for item, w in pairs:
        x -= w
        if x <= 0:
            return item
    return pairs[-1][0]


# ============================================================ catalogue and knowledge graph


def resolve_group(spec, devices, groups):
    """'@qi' -> keys of devices with that tag; '@charge:65' -> USB-PD devices needing <= 65 W."""
    name = spec[1:]
    if name.startswith("charge:"):
        watts = int(name.split(":", 1)[1])
        return [d["key"] for d in devices if d["charge_w"] is not None and d["charge_w"] <= watts]
    if name not in groups:
        raise ValueError(f"unknown compatibility group {spec}")
    c, tag = groups[name].get("category"), groups[name].get("tag")
    return [d["key"] for d in devices if c in (None, d["category"]) and (tag is None or tag in d["tags"])]


def build_catalogue(data, rng):
    """The product records with ids, ``device`` flags, resolved ``compat`` keys and stock, plus lookups."""
    cat = SimpleNamespace(device_categories=data.tax["device_categories"], successor_of=dict(data.successors))
    dev_cats = cat.device_categories
    cat.items = [dict(p, id=f"VW-{i}", device=p["category"] in dev_cats) for i, p in enumerate(data.products, 1001)]
    by_key = {r["key"]: r for r in cat.items}
    cat.get, devices = by_key.__getitem__, [r for r in cat.items if r["device"]]
    for r in cat.items:
        keys = [resolve_group(s, devices, data.tax["groups"]) if s.startswith("@") else [s] for s in r["compat_spec"]]
        r["compat"] = list(dict.fromkeys(k for ks in keys for k in ks))  # in order, without repeats
        if unknown := [k for k in r["compat"] if k not in by_key]:
            raise ValueError(f"{r['origin']}: unknown compatible device(s) {unknown}")
    for r in cat.items:
        r["stock"] = 0 if r["oos"] else rng.randint(3, 40) if r["device"] else rng.randint(6, 180)
    cat.compatible = {d["key"]: [r["key"] for r in cat.items if d["key"] in r["compat"]] for d in devices}
    return cat


def build_triples(cat, data):
    t = set()
    for r in cat.items:
        t.update([(r["id"], "brand", f"brand:{r['brand']}"), (r["id"], "category", f"category:{r['category']}")])
        t.update((r["id"], "suits_need", f"need:{n}") for n in r["needs"])
        if r["series"]:
            t.add((r["id"], "in_series", f"series:{r['series']}"))
        t.update((r["id"], "compatible_with", cat.get(k)["id"]) for k in r["compat"])
    t.update((f"category:{c}", "subcategory_of", f"category:{p}") for c, p in data.tax["category_parent"].items())
    used = {r["category"] for r in cat.items}
    for a, dev_cats in data.tax["accessory_of"].items():
        t.update((f"category:{a}", "accessory_of", f"category:{dc}") for dc in dev_cats if a in used)
    t.update((cat.get(new)["id"], "successor_of", cat.get(old)["id"]) for new, old in data.successors)
    return sorted(t)


# ============================================================ users and their history


def rand_dt(rng, start, end):
    """A random minute between two datetimes, during waking hours."""
    d = start + timedelta(days=rng.randint(0, max((end - start).days, 0)))
    return d.replace(hour=rng.randint(7, 22), minute=rng.randint(0, 59))


def build_users(rng, cat, data):
    """One user per name, segments dealt out evenly: devices, preferences and what they own over time."""
    cfgs, names, watches = data.users["segments"], data.users["names"], data.users["watches_for_phone_brand"]
    seg_names = [s for s in cfgs for _ in range(len(names) // len(cfgs))]
    rng.shuffle(seg_names)
    users = []
    for i, (name, seg) in enumerate(zip(names, seg_names)):
        cfg = cfgs[seg]
        phone = rng.choice(cfg["phones"])
        devices = [phone]
        for group in cfg["groups"]:
            if rng.random() >= group["p"] or len(devices) >= 3:
                continue
            pool = [k for g in group["pool"] for k in (watches[cat.get(phone)["brand"]] if g == "watch" else [g])]
            options = [k for k in pool if k not in devices]
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
        row = {"id": f"U{i + 1:03d}", "name": name, "segment": seg, "location": rng.choice(data.users["cities"])}
        u = SimpleNamespace(row=row | {"preferences": prefs}, id=row["id"], first_name=name.split()[0], devices=devices)
        # devices: keys in purchase order; owned: items bought and not returned; purchases: (key, datetime)
        u.owned, u.returned, u.purchases, u.liked, u.disliked = [], [], [], liked, disliked
        u.budget, u.interests = prefs["budget"], interests
        users.append(u)
    return users


def pref_score(rng, u, r, cat, noise=1.5):
    """How much a user likes an item (shared by events and conversations)."""
    s = 1.5 * len(set(r["needs"]) & set(u.interests)) + 2.0 * (r["brand"] in u.liked)
    s += 1.0 * (r["brand"] in {cat.get(k)["brand"] for k in u.devices})  # the brand of one of their devices
    return s + rng.random() * noise


def fits(r, u):
    """Device-specific items must fit one of the user's devices; universal items always fit."""
    return not r["compat"] or any(k in u.devices for k in r["compat"])


def others(cat, r):
    """The other items of ``r``'s category."""
    return [a for a in cat.items if a["category"] == r["category"] and a is not r]


def watch_ok(r, u, cat):
    """Smartwatches must work with the user's phone platform."""
    if r["category"] not in ("smartwatches", "fitness-trackers") or not r["attrs"].get("works_with"):
        return True
    phones = [cat.get(k) for k in u.devices if cat.get(k)["category"] == "smartphones"]
    return not phones or ("iPhone" if phones[0]["brand"] == "Apple" else "Android") in r["attrs"]["works_with"]


class EventLog(list):
    """The events.jsonl rows; a purchase also updates what the user owns."""

    def add(self, u, r, kind, when, rating=None):
        row = {"user_id": u.id, "item_id": r["id"], "type": kind, "ts": when.strftime(TS_FORMAT)}
        self.append(row if rating is None else dict(row, rating=rating))

    def buy(self, u, r, when):
        self.add(u, r, "purchase", when)
        u.purchases.append((r["key"], when))
        if r["key"] not in u.owned:
            u.owned.append(r["key"])


def history_events(rng, cat, users, log, data):
    """Purchases (after a view or two), views, ratings and returns before the conversation period."""
    (start, end), prior, stars = data.gen["history"], data.users["category_prior"], data.users["ratings"]

    def buy(u, r, when):
        log.add(u, r, "view", when - timedelta(minutes=rng.randint(3, 90)))
        alts = [a for a in others(cat, r) if not r["compat"] or set(a["compat"]) & set(r["compat"])]
        if alts and rng.random() < 0.7:  # compared it with an alternative first
            log.add(u, rng.choice(alts), "view", when - timedelta(hours=rng.randint(2, 72)))
        log.buy(u, r, when)
        bought.append((r, when))

    for u in users:
        # bought: (record, datetime); extras: what they may buy besides devices
        bought, extras = [], [r for r in cat.items if not r["device"] and r["brand"] not in u.disliked]
        for k in u.devices:
            buy(u, cat.get(k), rand_dt(rng, start, end))
        # accessories for the devices, a few days after the device
        dev_when = {r["key"]: w for r, w in bought}
        cands = [r for r in extras if set(r["compat"]) & set(u.devices) and r["price"] <= max(u.budget, 120)]
        scored = sorted(cands, key=lambda r: -(pref_score(rng, u, r, cat, 2.0) + prior.get(r["category"], 0)))
        n_acc, seen_cats = rng.randint(1, 3), set()
        for r in scored:
            if len(seen_cats) < n_acc and r["category"] not in seen_cats:  # one item per category
                seen_cats.add(r["category"])
                base = max(dev_when[k] for k in r["compat"] if k in dev_when)
                buy(u, r, base + timedelta(days=rng.randint(0, 25), minutes=rng.randint(5, 600)))
        # something for one or two interests
        for need in rng.sample(u.interests, min(2, len(u.interests))):
            if rng.random() > 0.6:
                continue
            cands = [r for r in extras if need in r["needs"] and r["price"] <= u.budget and r["key"] not in u.owned]
            cands = [r for r in cands if fits(r, u)]
            if cands:
                r = max(cands, key=lambda r: pref_score(rng, u, r, cat, 3.0))
                buy(u, r, rand_dt(rng, start, end))
        browse = [r for r in cat.items if r["key"] not in u.owned and fits(r, u) and set(r["needs"]) & set(u.interests)]
        for r in rng.sample(browse, min(len(browse), rng.randint(2, 5))):
            log.add(u, r, "view", rand_dt(rng, start, end))
        # one return for some users, then ratings
        returned, accessories = None, [(r, w) for r, w in bought if not r["device"]]
        if accessories and rng.random() < 0.2:
            returned, w = rng.choice(accessories)
            back = w + timedelta(days=rng.randint(3, 20))
            if rng.random() < 0.6:
                log.add(u, returned, "rating", back - timedelta(hours=2), rating=rng.choice(stars["returned"]))
            log.add(u, returned, "return", back)
            u.owned.remove(returned["key"])
            u.returned.append(returned["key"])
        for r, w in bought:
            if r is not returned and rng.random() < 0.55:
                kind = "device" if r["device"] else "liked_brand" if r["brand"] in u.liked else "other"
                rating = rng.choice(stars[kind])
                log.add(u, r, "rating", w + timedelta(days=rng.randint(4, 30)), rating=rating)


# ============================================================ conversations


def mention(*items):
    """How the agent names items: exact catalogue title and price, listed with commas and 'and'."""
    parts = [f"the {r['title']} (${r['price']:.2f})" for r in items]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def nice_budget(cands, budgets):
    """A round 'under $X' that keeps at least two candidates, or None if it wouldn't constrain."""
    prices = sorted(r["price"] for r in cands)
    if len(prices) >= 3:
        for x in budgets:
            if x >= prices[1]:
                return x if x < prices[-1] else None
    return None


class Conversation:
    """Builds one logged conversation for a user and records its side-effect events."""

    def __init__(self, rng, cat, data, u, started, log):
        self.rng, self.cat, self.data, self.u, self.started, self.log = rng, cat, data, u, started, log
        self.S, self.R, self.A = data.service, data.req, data.req["agent"]  # phrasings
        self.turns, self.order_id, self.minute = [], None, 0
        self.name = u.first_name if rng.random() < 0.6 else None

    # -- turns
    def tick(self):
        self.minute += self.rng.randint(1, 3)
        return self.started + timedelta(minutes=self.minute)

    def says(self, text, lead="", **values):
        """A customer turn: ``text`` (or one of a list) styled, then filled in. A product record value is
        named the way customers do (say_item) and a callable is called, both after the styling's draws.
        After a ``lead`` connective ("also, ") the sentence start is lower-cased."""
        text = self.style(self.rng.choice(text) if isinstance(text, list) else text)
        values = {k: self.say_item(v) if isinstance(v, dict) else v() if callable(v) else v for k, v in values.items()}
        text = text.format(**values)
        if lead and text[:1].isupper() and not text.startswith(("I ", "I'")):
            text = text[0].lower() + text[1:]
        self.turns.append({"role": "user", "text": lead + text})

    def agent(self, text, intent, template_id=None, recommended=None):
        t = {"role": "agent", "text": text, "intent": intent} | ({"template_id": template_id} if template_id else {})
        if recommended:  # shown items count as viewed
            t["recommended"], t["accepted"] = [r["id"] for r in recommended], []
            when = self.tick()
            for r in recommended:
                self.log.add(self.u, r, "view", when)
        self.turns.append(t)
        return t

    def recommends(self, text, shown):
        return self.agent(text.replace("{L}", mention(*shown)), "recommend_product", recommended=shown)

    def templated(self, tid, extra="", recommended=None, **values):
        """Answer with a template filled like the runtime does: given values, then shop facts, then its
        defaults. A slot with no value stays as it is, for chatrec.kb to report against the template."""
        tpl, values = self.data.tpl[tid], dict(values, customer_name=self.name)
        defaults = tpl.get("slots", {}) | self.data.shop
        text = SLOT_RE.sub(lambda m: str(values.get(m[1]) or defaults.get(m[1], m[0])), tpl["text"])
        return self.agent(text + " " + extra if extra else text, tpl["intent"], tid, recommended)

    def style(self, text):
        """Customer phrasing: random case, a dropped '?' and the odd typo; placeholders stay intact."""
        roll = self.rng.random()
        if roll < 0.25:
            text = text.lower().rstrip("?!.")
        elif roll < 0.6 and text[:1].isalpha():
            text = text[0].upper() + text[1:]
        if self.rng.random() < 0.12:
            words = text.split(" ")
            idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha() and w.islower()]
            if idx:
                i = self.rng.choice(idx)
                w = words[i]
                j = self.rng.randint(1, len(w) - 3)
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
                text = " ".join(words)
        return text

    def say_item(self, r, aliases=True):
        """How the customer names an item: an alias or the (possibly lower-cased) title."""
        if aliases and r["aliases"] and self.rng.random() < 0.65:
            return self.rng.choice(r["aliases"])
        return r["title"].lower() if self.rng.random() < 0.4 else r["title"]

    def new_order_id(self):
        self.order_id = self.order_id or f"#VW-{self.rng.randint(10000, 99999)}"
        return self.order_id

    def can_buy(self, r):
        """Users own at most three devices, so a fourth device is never bought."""
        return not r["device"] or len(self.u.devices) < 3

    def take(self, r, turn=None):
        """The customer buys ``r``, accepting it from ``turn``'s recommendations if given."""
        self.templated(self.rng.choice(["add_to_cart_confirm", "add_to_cart_confirm_express"]), item_title=r["title"])
        if turn:
            turn["accepted"] = [r["id"]]
        self.log.buy(self.u, r, self.tick() + timedelta(minutes=self.rng.randint(2, 8)))
        if r["device"]:
            self.u.devices.append(r["key"])

    # -- service
    def service(self, intent, lead="", follow_up=False):
        if intent in PRODUCT_QUESTIONS:
            return getattr(self, intent)(lead)
        phrases = self.S["phrases"][intent]
        if follow_up:
            phrases = [p for p in phrases if p[1] not in self.S["asks_for_order"]]
        if not self.u.purchases:
            phrases = [p for p in phrases if "{item}" not in p[0]]
        text, tid = self.rng.choice(phrases)
        values, fmt = {}, {}
        if "{order}" in text:
            fmt["order"] = values["order_id"] = self.new_order_id()
        elif self.order_id and follow_up:
            values["order_id"] = self.order_id
        if "{item}" in text:  # something bought recently
            any_item = intent not in self.S["item_not_device"]
            keys = [k for k, _ in self.u.purchases if any_item or not self.cat.get(k)["device"]]
            r = self.cat.get(self.rng.choice(keys[-4:]))
            fmt["item"], values["item_title"] = self.say_item(r), r["title"]
        self.says(text, lead, **fmt)
        if tid in self.S["asks_for_order"]:
            self.templated(tid)
            oid = self.new_order_id()
            self.turns.append({"role": "user", "text": self.rng.choice(self.S["order_id_replies"]).format(order=oid)})
            tid, values = self.S["asks_for_order"][tid], {"order_id": oid}
        self.templated(tid, **values)

    def product_availability(self, lead):
        cat, u, rng = self.cat, self.u, self.rng
        oos = [r for r in cat.items if not r["stock"]]
        related = [r for r in cat.items if r["stock"] and r["key"] not in u.owned]
        related = [r for r in related if r["compat"] and fits(r, u) or set(r["needs"]) & set(u.interests)]
        r = rng.choice(oos) if rng.random() < 0.45 else rng.choice(related)
        self.says(self.S["availability"] + ([] if r["stock"] else self.S["availability_out_of_stock"]), lead, x=r)
        self.log.add(u, r, "view", self.tick())
        if r["stock"]:
            self.templated("availability_in_stock", item_title=r["title"])
            if rng.random() < 0.3 and len(self.turns) <= 6 and self.can_buy(r):
                self.says(self.S["buy_now"])
                self.take(r)
            return
        alt, why = self.alternative_for(r)
        self.offer("availability_out_of_stock", r, alt, "out_of_stock_alternative", 0.35, why=why)

    def alternative_for(self, r):
        """An in-stock stand-in for an out-of-stock item, personalised to the user's devices."""
        cat, u = self.cat, self.u
        cands = [a for a in others(cat, r) if a["stock"] and a["key"] not in u.owned and watch_ok(a, u, cat)]
        for key in self.data.tax["alternative_must_match"]:
            if key in r["attrs"]:
                cands = [a for a in cands if a["attrs"].get(key) == r["attrs"][key]]
        if r["compat"]:
            cands = [a for a in cands if set(a["compat"]) & set(r["compat"])]
        else:
            cands = [a for a in cands if 0.5 * r["price"] <= a["price"] <= 1.6 * r["price"]]
        if not cands:
            return None, ""
        fit = {a["key"]: 2.0 * bool(set(a["compat"]) & set(u.devices)) for a in cands}  # fits one of theirs
        alt = max(cands, key=lambda a: pref_score(self.rng, u, a, cat) + fit[a["key"]] + (a["brand"] == r["brand"]))
        if r["compat"]:
            shared = [k for k in alt["compat"] if k in r["compat"]]
            mine = [k for k in shared if k in u.devices]
            return alt, fill(self.A["alternative_fits"], device=cat.get((mine or shared)[0])["short"])
        return alt, self.A["alternative_similar"]

    def offer(self, tid, r, alt, extra, p, **values):
        """Answer about ``r`` with template ``tid``, suggesting ``alt`` if any (the agent phrasing
        ``extra``); the customer takes it with probability ``p``."""
        extra = fill(self.A[extra], item=mention(alt), **values) if alt else ""
        turn = self.templated(tid, extra=extra, recommended=[alt] if alt else None, item_title=r["title"])
        wanted = alt and alt["brand"] not in self.u.disliked and self.can_buy(alt)
        if alt and self.rng.random() < p and len(self.turns) <= 6 and wanted:
            self.says(self.S["take_alternative"])
            self.take(alt, turn)

    def product_compatibility(self, lead):
        cat, u, rng = self.cat, self.u, self.rng
        devs = [k for k in u.devices if cat.compatible[k]]
        if not devs:
            return self.product_availability(lead)
        d = cat.get(rng.choice(devs))
        c = rng.choice(sorted({cat.get(k)["category"] for k in cat.compatible[d["key"]]}))
        yes = [cat.get(k) for k in cat.compatible[d["key"]] if cat.get(k)["category"] == c]
        no = [r for r in cat.items if r["category"] == c and r["compat"] and d["key"] not in r["compat"]]
        fits = not no or rng.random() < 0.5
        a = rng.choice(yes if fits else no)
        self.says(rng.choice(self.S["compatibility"]), lead, a=self.say_item(a, aliases=False), d=d)
        if fits:
            return self.templated("compatibility_yes", item_title=a["title"])
        alts = [r for r in yes if r["stock"] and r["key"] not in u.owned]
        alt = max(alts, key=lambda r: pref_score(rng, u, r, cat)) if alts else None
        self.offer("compatibility_no", a, alt, "incompatible_alternative", 0.4, device=d["short"])

    # -- recommendation
    def candidates_ok(self, r):
        return r["stock"] > 0 and r["key"] not in self.u.owned and r["key"] not in self.u.returned

    def budget_text(self, budget):
        return fill(self.rng.choice(self.R["budget_phrases"]), x=budget) if budget else ""

    def request(self, lead):
        """Ask for a feasible recommendation: dict(cands, intro, tail, device, ...), or None."""
        first = self.rng.choice([k for k, n in self.R["request_kinds"].items() for _ in range(n)])
        for kind in [first] + [k for k in ("accessory", "need", "upgrade", "gift") if k != first]:
            req = getattr(self, "ask_" + kind)(lead)
            if req:
                return req
        return None

    def ask_accessory(self, lead):
        cat, u, rng, A = self.cat, self.u, self.rng, self.A
        options = []  # ((device key, category, candidates), weight)
        for k in u.devices:
            by_cat = {}
            for r in filter(self.candidates_ok, map(cat.get, cat.compatible[k])):
                by_cat.setdefault(r["category"], []).append(r)
            for c, rs in sorted(by_cat.items()):
                if len(rs) >= 2 and c in self.R["category_words"]:
                    fit = sum(bool(set(r["needs"]) & set(u.interests)) for r in rs) / len(rs)
                    options.append(((k, c, rs), 1 + self.data.users["category_prior"].get(c, 0) + fit))
        if not options:
            return None
        k, c, rs = weighted_choice(rng, options)
        d, phrasing = cat.get(k), rng.choice(self.R["accessory_requests"])
        budget = nice_budget(rs, self.R["nice_budgets"]) if "{b}" in phrasing and rng.random() < 0.45 else None
        if budget:
            rs = [r for r in rs if r["price"] <= budget]
        sing, plural = self.R["category_words"][c]
        self.says(phrasing, lead, b=self.budget_text(budget), c=sing, cp=plural, d=d)
        intro = fill(rng.choice(A["accessory_intros"]), plural=plural, device=d["short"])
        tail = fill(A["budget_tail"] if budget else rng.choice(A["accessory_tails"]), budget=budget, device=d["short"])
        return dict(cands=rs, intro=intro, tail=tail, device=d)

    def ask_need(self, lead):
        cat, u, rng = self.cat, self.u, self.rng
        feasible, items = [], [r for r in cat.items if self.candidates_ok(r) and fits(r, u) and watch_ok(r, u, cat)]
        for nr in self.R["need_request"]:
            c, need = nr["category"], nr["need"]
            if c in cat.device_categories and any(cat.get(k)["category"] == c for k in u.devices):
                continue  # already owns one: that would be an upgrade request instead
            rs = [r for r in items if r["category"] == c and need in r["needs"]]
            if len(rs) >= 2:
                feasible.append((need, nr, rs))
        mine = [f for f in feasible if f[0] in u.interests]
        pool = mine if mine and rng.random() < 0.8 else feasible
        if not pool:
            return None
        _, nr, rs = rng.choice(pool)
        budget, affordable = None, [r for r in rs if r["price"] <= u.budget]
        if rng.random() < 0.5:
            budget = nice_budget(rs, self.R["nice_budgets"])
        elif nr["category"] not in cat.device_categories and len(affordable) >= 2:
            rs = affordable  # the agent knows the profile budget
        if budget:
            rs = [r for r in rs if r["price"] <= budget]
        self.says(nr["phrasings"], lead, b=self.budget_text(budget))
        intro = fill(rng.choice(self.A["need_intros"]), purpose=nr["purpose"])
        tail = fill(self.A["budget_tail"], budget=budget) if budget else ""
        return dict(cands=rs, intro=intro, tail=tail, device=None)

    def ask_gift(self, lead):
        cat, u, rng, R = self.cat, self.u, self.rng, self.R
        persona, need = rng.choice(R["gift_personas"])
        cap = min(u.budget or 200, rng.choice(R["gift_budgets"]))
        rs = [r for r in cat.items if r["category"] in R["gift_categories"] and need in r["needs"]]
        rs = [r for r in rs if self.candidates_ok(r) and r["price"] <= cap]
        if len(rs) < 2:
            return None
        b = self.budget_text(cap)
        self.says(R["gift_requests"], lead, b=b, r=lambda: rng.choice(R["gift_relations"]), p=persona)
        intro = fill(self.A["gift_intro"], persona=persona, budget=cap)
        return dict(cands=rs, intro=intro, tail="", device=None, diverse=True)

    def ask_upgrade(self, lead):
        cat, u, rng = self.cat, self.u, self.rng
        options = []
        for d in map(cat.get, u.devices):
            rs = [r for r in others(cat, d) if self.candidates_ok(r) and r["price"] >= 0.75 * d["price"]]
            rs = [r for r in rs if watch_ok(r, u, cat)]
            if len(rs) >= 2:
                options.append((d, rs))
        if not options:
            return None
        d, rs = rng.choice(options)
        self.says(self.R["upgrade_requests"], lead, d=d)
        succ = [r for r in rs if cat.successor_of.get(r["key"]) == d["key"]]
        tail = fill(self.A["successor_tail"], title=succ[0]["title"], device=d["short"]) if succ else ""
        intro = fill(self.A["upgrade_intro"], device=d["short"])
        return dict(cands=rs, intro=intro, tail=tail, device=d, successor=succ)

    def rank(self, req):
        """Candidates by preference, with a bonus for the successor and for the device's brand."""
        succ = {r["key"] for r in req.get("successor", [])}
        dev_brand = req["device"]["brand"] if req.get("device") else None
        bonus = {r["id"]: 3.0 * (r["key"] in succ) + 1.0 * (r["brand"] == dev_brand) for r in req["cands"]}
        score = {r["id"]: pref_score(self.rng, self.u, r, self.cat) + bonus[r["id"]] for r in req["cands"]}
        return sorted(req["cands"], key=lambda r: (-score[r["id"]], r["id"]))

    def pick(self, req, ranked, k):
        """The top k; for gifts, one per category first."""
        if not req.get("diverse"):
            return ranked[:k]
        firsts = [r for i, r in enumerate(ranked) if r["category"] not in {o["category"] for o in ranked[:i]}]
        return (firsts + [r for r in ranked if r not in firsts])[:k]

    def recommend(self, lead="", max_turns=6):
        """A recommendation conversation; False if no request is feasible for this user."""
        rng, u, R, A = self.rng, self.u, self.R, self.A
        req = self.request(lead)
        if req is None:
            return False
        ranked = self.rank(req)
        shown = self.pick(req, ranked, min(len(ranked), rng.choice([2, 3, 3, 4])))
        tail = req["tail"].replace("{All}", A["both_are"] if len(shown) == 2 else A["all_are"])
        text = " ".join([req["intro"]] + [extra for extra in (tail, self.personal_note(shown, req)) if extra])
        turn = self.recommends(text, shown)
        left = max_turns - 2
        # follow-up: avoid a disliked brand, or ask for cheaper
        bad = [r["brand"] for r in shown if r["brand"] in u.disliked]
        if left >= 2 and (bad or rng.random() < 0.3):
            brand, floor = bad[0] if bad else None, min(r["price"] for r in shown)
            rest = [r for r in ranked if (r["brand"] != brand if bad else r["price"] < floor)]
            if rest:
                if bad:
                    same = shown[0]["brand"] == brand and rng.random() < 0.5
                    self.says(R["not_that_brand" if same else "not_brand"], b=brand)
                else:
                    self.says(R["cheaper"])
                shown = rest[: rng.choice([2, 3] if bad else [1, 2, 3])]
                key = "other_brands" if bad else "cheaper"
                text = fill(rng.choice(A[key]), brand=brand)
                turn = self.recommends(fill(A[key + "_one"], brand=brand) if len(shown) == 1 else text, shown)
                left -= 2
        if left >= 2:
            liked = [r for r in shown if r["brand"] not in u.disliked and self.can_buy(r)]
            if liked and rng.random() < 0.6:
                choice = max(liked, key=lambda r: pref_score(rng, u, r, self.cat, 1.0))
                self.says(R["accept"], r=lambda: self.refer(choice, shown))
                self.take(choice, turn)
            elif rng.random() < 0.5:
                self.says(R["decline"])
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
        if req.get("device") or top["compat"] or top["device"]:
            return ""  # device-specific items are already matched to the user's devices
        d = next((d for d in map(self.cat.get, self.u.devices) if d["brand"] == top["brand"]), None)
        return fill(self.A["personal_note"], title=top["title"], device=d["short"]) if d else ""

    # -- whole conversations
    def service_intent(self, product_questions=True):
        w = {k: self.S["default_weight"] for k in self.S["phrases"]} | self.S["weights"]
        pairs = [(k, v) for k, v in sorted(w.items()) if product_questions or k not in PRODUCT_QUESTIONS]
        return weighted_choice(self.rng, pairs)

    def service_conversation(self):
        rng = self.rng
        if rng.random() < 0.15:
            self.says(self.S["greetings"])
            self.templated("greeting_welcome")
        intent = self.service_intent()
        self.service(intent)
        if intent in self.S["follow_ups"] and len(self.turns) <= 6 and rng.random() < 0.35:
            nxt = rng.choice(self.S["follow_ups"][intent])
            if nxt not in PRODUCT_QUESTIONS:
                self.service(nxt, lead=rng.choice(self.S["follow_up_leads"]), follow_up=True)
        if len(self.turns) <= 6 and self.turns[-1]["role"] == "agent" and rng.random() < 0.4:
            self.says(self.S["thanks"])
            self.templated(rng.choice(["thanks_reply", "thanks_reply_short"]))


def build_transcripts(rng, cat, data, users, log):
    """The conversations, in time order; their views and purchases go to ``log``."""
    plan, order, gen = [], list(users), data.gen
    rng.shuffle(order)
    for i in range(gen["conversations"]):
        u = order[i] if i < len(order) else rng.choice(users)
        kind = weighted_choice(rng, list(gen["conversation_kinds"].items()))
        plan.append((rand_dt(rng, *gen["conversation_period"]), u.id, kind, u))
    plan.sort(key=lambda p: (p[0], p[1]))
    rows = []
    for n, (when, _, kind, u) in enumerate(plan, start=1):
        conv = Conversation(rng, cat, data, u, when, log)
        if kind == "both":
            conv.service(conv.service_intent(product_questions=False))
            ok = conv.recommend(lead=rng.choice(data.req["both_leads"]), max_turns=8 - len(conv.turns))
        else:
            ok = kind == "recommend" and conv.recommend()
        if not ok:  # no feasible request: a plain service conversation instead
            if kind != "service":
                conv = Conversation(rng, cat, data, u, when, log)
            conv.service_conversation()
        row = {"conversation_id": f"C{n:04d}", "user_id": u.id, "started_at": when.strftime(TS_FORMAT)}
        rows.append(row | {"turns": conv.turns})
    return rows


# ============================================================ generating, validating, writing


def generate(data):
    """Every KB file's rows, drawing from one random generator in a fixed order."""
    rng = random.Random(data.gen["seed"])
    cat = build_catalogue(data, rng)
    users, log = build_users(rng, cat, data), EventLog()
    history_events(rng, cat, users, log, data)
    transcripts = build_transcripts(rng, cat, data, users, log)
    order = {"view": 0, "purchase": 1, "rating": 2, "return": 3}
    columns = ("id", "title", "description", "category", "brand", "price", "stock", "attributes", "aliases")
    field = {"description": "desc", "attributes": "attrs"}  # the record fields with another name
    return {
        "catalogue": [{c: r[field.get(c, c)] for c in columns} for r in cat.items],
        "templates": [{c: t.get(c, {}) for c in ("id", "intent", "text", "slots")} for t in data.templates],
        "kg": build_triples(cat, data),
        "users": [u.row for u in users],
        "events": sorted(log, key=lambda e: (e["ts"], e["user_id"], order[e["type"]], e["item_id"])),
        "transcripts": transcripts,
    }, cat


def write_kb(folder, data, rows):
    texts = {"shop.json": json.dumps(data.shop, ensure_ascii=False, indent=2) + "\n"}
    texts["kg.tsv"] = "".join(f"{s}\t{p}\t{o}\n" for s, p, o in [("subject", "predicate", "object")] + rows["kg"])
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


def fail(message, problems, shown=50):
    print(f"make_demo_kb: {message}", file=sys.stderr)
    more = [f"... and {len(problems) - shown} more"] if len(problems) > shown else []
    print("\n".join("  " + p for p in problems[:shown] + more), file=sys.stderr)
    return 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    kb_dir = os.path.join(os.path.dirname(HERE), "kb")
    ap.add_argument("--out", default=kb_dir, help="output folder (default: kb/ at the repository root)")
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
            need = data.gen["min_rows"]
            problems = [f"{k}: {len(rows[k])} rows, need at least {n}" for k, n in need.items() if len(rows[k]) < n]
    except (KeyError, ValueError, OSError) as exc:
        problems = [str(exc) if type(exc) is ValueError else f"generation failed: {exc!r}"]
    if problems:
        return fail(f"{len(problems)} problem(s) in {args.data}, nothing written:", problems)

    # Write next to the output (same file system, so os.replace is atomic) and let chatrec.kb judge.
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=os.path.dirname(out))
    try:
        write_kb(tmp, data, rows)
        try:
            load_kb(tmp)
        except KBError as exc:
            origins = {"catalogue": [r["origin"] for r in cat.items]}
            origins["templates"] = [f"templates.toml (template {t['id']})" for t in data.templates]
            errors = [explain(e, tmp, origins) for e in exc.errors]
            return fail(f"chatrec.kb rejects the generated KB, nothing written to {out}:", errors)
        os.makedirs(out, exist_ok=True)
        for name in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, name), os.path.join(out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n, oos = {name: len(rows[name]) for name in rows}, sum(1 for r in rows["catalogue"] if r["stock"] == 0)
    made = f"{n['catalogue']} items ({oos} out of stock), {n['templates']} templates, {n['kg']} triples, "
    print(f"{out}: {made}{n['users']} users, {n['events']} events, {n['transcripts']} conversations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
