"""The learned turn router: which answer template (intent) and which route a message needs.

One multinomial logistic regression (scikit-learn) on the normalised sentence embeddings
the project already computes (``retrieval.embedder``, MiniLM by default). Its classes are:

- every answer template the logs used (a *service* class, or *handoff* / *chitchat* when the
  template's intent is in ``router.handoff_intents`` / ``router.chitchat_intents``; a
  template the logs mostly answered with items as well is *both*),
- ``__recommend__``: customer messages the agent answered with items,
- ``__chitchat__`` and ``__out_of_scope__``: the small written sets of
  :mod:`chatrec.turn.route_examples`.

Training data are the KB's logs (:func:`log_examples`, training conversations only: the
10% held-out split that evaluation scores is never learned from). A message is *out of
scope* when its best class is ``__out_of_scope__`` or the best in-scope class's probability
is under ``oos_threshold``; that threshold is chosen on a calibration fifth of the training
conversations (the model fitted on the other four fifths; see :func:`choose_threshold`),
then the model is refitted on all of them. When the two best templates together pass the
threshold, the reply is a clarifying question between them rather than a refusal.

A message of several clauses (cut at punctuation, :func:`clauses`) that asks a service
question in one clause and for items in another is ``both`` (:meth:`TurnClassifier.predict`);
the two probability thresholds are chosen on the same calibration split with synthetic
compounds of its messages (:func:`calibrate_compound`). The escalation model reads the
embedding, a few typography/keyword features and character n-grams.

:func:`load_or_train` keeps one router per set of logs: in memory, then on disk under
``<data_dir>/router/``, keyed by a hash of the logs, the written sets and the settings, so
changed logs retrain it on next use (``chatrec router train`` does it ahead of time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chatrec.config import RouterSettings, Settings
from chatrec.kb import RECOMMEND_LABEL, KnowledgeBase, is_heldout
from chatrec.retrieval.base import TextEmbedder
from chatrec.turn import route_examples

log = logging.getLogger(__name__)

CHITCHAT_LABEL = "__chitchat__"
STOCK_FIT_LABEL = "__stock_fit__"  # written stock/fit questions, before they get the nearest 'both' template
# written service questions naming a product, before they get the nearest 'service' template
PRODUCT_SERVICE_LABEL = "__product_service__"
OUT_OF_SCOPE_LABEL = "__out_of_scope__"
FORMAT_VERSION = 5
KNN_K = 10
KNN_T = 0.05
KNN_W = 0.3
ESCALATION_BETA = 0.5
_lock = threading.Lock()
_memory: dict[str, TurnClassifier] = {}


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # a template id or one of the special labels
    group: str  # conversation id (or the written set's name): the calibration split is by group


@dataclass
class Prediction:
    route: str
    label: str  # best class
    confidence: float  # probability of the best in-scope class
    template_id: str | None
    intent: str | None
    top: list[tuple[str, float]]  # best classes and probabilities
    clarify: list[str] = field(default_factory=list)  # intents to ask between, when unsure
    why: list[str] = field(default_factory=list)  # how a compound ('both') decision was reached


@dataclass
class TurnClassifier:
    classes: list[str]
    class_route: dict[str, str]
    class_intent: dict[str, str | None]
    vectorizer: Any  # character n-gram TF-IDF (typos, other languages), beside the embedding
    model: Any  # sklearn LogisticRegression over [embedding, TF-IDF]
    neighbours: np.ndarray  # (examples, dim) embeddings of the training messages
    neighbour_labels: np.ndarray  # class index of each
    oos_threshold: float
    logs_hash: str
    embedder: str
    escalation_coef: np.ndarray
    escalation_intercept: float
    escalation_threshold: float
    info: dict[str, Any] = field(default_factory=dict)
    # (service, recommend) probability thresholds of the compound 'both' decision (chosen on
    # the calibration split, see choose_compound_thresholds); None: no compound decision
    compound: tuple[float, float] | None = None
    # character n-gram TF-IDF of the escalation model (fitted on its own training texts)
    escalation_vectorizer: Any = None
    # per class, its group: the templates of one intent share a group (their probabilities are
    # summed before deciding, see group_of), every other class is a group of its own
    class_group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_groups(self) -> int:
        return int(self.class_group.max()) + 1 if len(self.class_group) else 0

    def grouped(self, probs: np.ndarray) -> np.ndarray:
        """Class probabilities (rows x classes) summed per group (rows x groups): the
        probability of an intent is the sum of its templates'."""
        return group_sum(np.atleast_2d(probs), self.class_group)

    def best_in_group(self, probs: np.ndarray, g: int) -> int:
        """The most probable class of group ``g`` (the answer template of an intent)."""
        members = np.flatnonzero(self.class_group == g)
        return int(members[np.argmax(probs[members])])

    def probabilities(self, texts: list[str], emb: np.ndarray) -> np.ndarray:
        """The logistic regression's probabilities blended with a vote of the nearest logged messages (``KNN_W``)."""
        lr = np.asarray(self.model.predict_proba(features(self.vectorizer, texts, emb)))
        return (1 - KNN_W) * lr + KNN_W * knn_vote(self.neighbours, self.neighbour_labels, len(self.classes), emb)

    def predict(self, text: str, emb: np.ndarray, embed: Callable[[list[str]], np.ndarray] | None = None) -> Prediction:
        """The route and template of ``text``. With ``embed`` (the embedder), a message of two
        clauses or more that the whole-message decision calls service, recommend or out of
        scope is also read clause by clause: a service question in one clause and a request
        for items in another make it ``both`` (:meth:`compound_route`)."""
        pred = self.decide(self.probabilities([text], np.asarray(emb).reshape(1, -1))[0])
        if embed is None or self.compound is None or pred.route not in ("service", "recommend", "out_of_scope"):
            return pred
        parts = clauses(text)
        if len(parts) < 2:
            return pred
        both = self.compound_route(parts, np.asarray(embed(parts), dtype=np.float32))
        return both or pred

    def compound_route(self, parts: list[str], emb: np.ndarray) -> Prediction | None:
        """``both`` when one clause's best class is a service template with at least the
        compound service threshold and another clause's best class is ``__recommend__`` with
        at least the recommend threshold; the service clause's template answers."""
        if self.compound is None or RECOMMEND_LABEL not in self.classes:
            return None
        probs = self.probabilities(parts, emb)
        hit = compound_hit(self.grouped(probs), self.group_routes(), self.group_of(RECOMMEND_LABEL), *self.compound)
        if hit is None:
            return None
        i, g, ps, pr = hit
        label = self.classes[self.best_in_group(probs[i], g)]
        order = np.argsort(-probs.max(axis=0))
        top = [(self.classes[k], float(probs[:, k].max())) for k in order[:3]]
        why = [f"clauses: service {label} p={ps:.2f} and items p={pr:.2f}"]
        return Prediction("both", label, ps, label, self.class_intent.get(label), top, why=why)

    def decide(self, probs: np.ndarray) -> Prediction:
        """The best intent (its templates' probabilities summed: sibling templates such as
        "in stock" and "out of stock" answer one question and must not split its vote against
        ``__recommend__``), answered by its most probable template."""
        order = np.argsort(-probs)
        top = [(self.classes[j], float(probs[j])) for j in order[:3]]
        gp = self.grouped(probs)[0]
        g_order = [int(g) for g in np.argsort(-gp)[:3]]  # out of scope is one group: two in scope among three
        lead = [self.best_in_group(probs, g) for g in g_order]  # each group's best class, best group first
        in_scope = [(g, j) for g, j in zip(g_order, lead) if self.classes[j] != OUT_OF_SCOPE_LABEL]
        g_best, best = in_scope[0] if in_scope else (g_order[0], lead[0])
        label, conf = self.classes[best], float(gp[g_best])
        clarify: list[str] = []
        top_is_oos = self.classes[lead[0]] == OUT_OF_SCOPE_LABEL
        if top_is_oos or conf < self.oos_threshold:
            pair = [(g, j) for g, j in in_scope[:2] if self.class_route[self.classes[j]] == "service"]
            if len(pair) == 2 and float(gp[pair[0][0]] + gp[pair[1][0]]) >= self.oos_threshold and not top_is_oos:
                clarify = [self.class_intent[self.classes[j]] or self.classes[j] for _, j in pair]
            return Prediction("out_of_scope", label, conf, None, None, top, clarify)
        route = self.class_route[label]
        tid = label if not label.startswith("__") else None
        return Prediction(route, label, conf, tid, self.class_intent.get(label), top)

    def group_of(self, label: str) -> int:
        return int(self.class_group[self.classes.index(label)]) if label in self.classes else -1

    def group_routes(self) -> list[str]:
        """The route of each group (every class of a group has its intent's route)."""
        routes = [""] * self.n_groups
        for c, g in zip(self.classes, self.class_group):
            routes[int(g)] = self.class_route[c]
        return routes

    def escalation_score(self, text: str, emb: np.ndarray) -> float:
        x = escalation_features(self.escalation_vectorizer, [text], np.asarray(emb).reshape(1, -1))
        z = float((x @ self.escalation_coef)[0]) + self.escalation_intercept
        return float(1.0 / (1.0 + np.exp(-z)))


# ------------------------------------------------------------------ compound messages

_CLAUSE = re.compile(r"(?<=[.?!;:,])\s+|\s+[-\u2013\u2014]+\s+")


def clauses(text: str) -> list[str]:
    """``text`` cut at sentence punctuation (. ? ! ; : ,) and spaced dashes, pieces of two
    words or more. Punctuation only, no conjunction list, so it works in any language that
    punctuates; a compound request without punctuation is read as one message."""
    parts = [p.strip(" ,.;:-\u2013\u2014") for p in _CLAUSE.split(text)]
    return [p for p in parts if len(re.findall(r"\w+", p)) >= 2]


def group_sum(probs: np.ndarray, class_group: np.ndarray) -> np.ndarray:
    """``probs`` (rows x classes) summed per group (rows x groups)."""
    n = int(class_group.max()) + 1 if len(class_group) else 0
    out = np.zeros((probs.shape[0], n), dtype=np.float64)
    np.add.at(out.T, class_group, probs.T)
    return out


COMPOUND_SERVICE_ROUTES = ("service", "both")


def compound_hit(
    probs: np.ndarray, routes: list[str], rec: int, t_service: float, t_recommend: float
) -> tuple[int, int, float, float] | None:
    """For the clause probabilities ``probs`` (clauses x intent groups, ``routes`` the route of
    each group, ``rec`` the ``__recommend__`` group): a clause whose best group is a service
    question (route service, or both: a stock/fit question) with probability >= ``t_service``
    and another clause whose best group is ``__recommend__`` (>= ``t_recommend``). Returns the
    service clause, its group and both probabilities; else ``None``."""
    if rec < 0:
        return None
    best = probs.argmax(axis=1)
    service = [
        (i, int(b), float(probs[i, b]))
        for i, b in enumerate(best)
        if routes[b] in COMPOUND_SERVICE_ROUTES and probs[i, b] >= t_service
    ]
    items = [(i, float(probs[i, rec])) for i, b in enumerate(best) if b == rec and probs[i, rec] >= t_recommend]
    pairs = [(s, r) for s in service for r in items if s[0] != r[0]]
    if not pairs:
        return None
    (i, g, ps), (_, pr) = max(pairs, key=lambda sr: sr[0][2] + sr[1][1])
    return i, g, ps, pr


# ------------------------------------------------------------------ features


def knn_vote(neighbours: np.ndarray, labels: np.ndarray, n_classes: int, emb: np.ndarray, k: int = KNN_K) -> np.ndarray:
    """Per class, the softmax-weighted (temperature ``KNN_T``) vote of the ``k`` most similar
    training messages: robust where a few near-identical logged messages exist (typos)."""
    q = np.asarray(emb, dtype=np.float32).reshape(-1, neighbours.shape[1])
    sims = q @ neighbours.T
    k = min(k, neighbours.shape[0])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    out = np.zeros((q.shape[0], n_classes), dtype=np.float64)
    for r in range(q.shape[0]):
        s = sims[r, top[r]]
        w = np.exp((s - s.max()) / KNN_T)
        np.add.at(out[r], labels[top[r]], w / w.sum())
    return out


def make_vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True, max_features=60000)


def features(vectorizer: Any, texts: list[str], emb: np.ndarray) -> Any:
    """``[embedding | character n-gram TF-IDF]``, both rows L2-normalised."""
    from scipy.sparse import csr_matrix, hstack

    return hstack([csr_matrix(np.asarray(emb, dtype=np.float32)), vectorizer.transform(texts)], format="csr")


_ANGER = re.compile(
    r"\b(?:ridiculous|useless|incompetent|furious|scam|worst|unacceptable|disgrace\w*|angry|hopeless|stupid|"
    r"terrible|awful|never again|joke|sick and tired|wasting my time|fed up|pathetic|rubbish|"
    r"damn|hell|wtf|ffs|not helpful|report you)\b",
    re.IGNORECASE,
)
_URGENT = re.compile(
    r"\b(?:urgent\w*|asap|immediately|emergency|right away|right now|today|hacked|fraud\w*|smok\w+|"
    r"swell\w*|burn\w*|stolen|stole|before midnight|time sensitive)\b",
    re.IGNORECASE,
)


def escalation_features(vectorizer: Any, texts: list[str], emb: np.ndarray) -> Any:
    """The escalation model's input: ``[embedding | typography and keyword cues | character
    2-4-gram TF-IDF]`` (the n-grams tell "charged twice" from "charged twice and nobody will
    fix it" where the embeddings are close; 5-fold CV F0.5 on the written set 0.79 -> 0.83)."""
    from scipy.sparse import csr_matrix, hstack

    dense = np.hstack([np.asarray(emb, dtype=np.float32), np.vstack([lexical_features(t) for t in texts])])
    if vectorizer is None:
        return csr_matrix(dense)
    return hstack([csr_matrix(dense), vectorizer.transform(texts)], format="csr")


def lexical_features(text: str) -> np.ndarray:
    """Keyword and typography cues, used only as features of the escalation model."""
    words = re.findall(r"[A-Za-z]{3,}", text)
    caps = sum(1 for w in words if w.isupper()) / len(words) if words else 0.0
    return np.asarray(
        [
            caps,
            min(text.count("!"), 3) / 3,
            min(len(_ANGER.findall(text)), 2) / 2,
            min(len(_URGENT.findall(text)), 2) / 2,
        ],
        dtype=np.float32,
    )


# ------------------------------------------------------------------ training data


def log_examples(kb: KnowledgeBase) -> tuple[list[Example], dict[str, float]]:
    """Customer messages of the training conversations and what answered them, and per
    template the share of its logged turns that also showed items.

    The customer's messages since the agent last spoke are joined (as the replay does).
    An agent turn with items and no template is ``__recommend__``; with a template, that
    template; with only an intent, the template the logs used most for that intent."""
    by_intent: dict[str, Counter[str]] = defaultdict(Counter)
    for conv in kb.transcripts:
        for t in conv.turns:
            if t.role == "agent" and t.template_id in kb.templates and t.intent:
                by_intent[t.intent][t.template_id] += 1
    for tpl in kb.templates.values():
        by_intent[tpl.intent][tpl.id] += 0
    intent_template = {i: c.most_common(1)[0][0] for i, c in by_intent.items() if c}
    out: list[Example] = []
    with_items: Counter[str] = Counter()
    used: Counter[str] = Counter()
    for conv in kb.transcripts:
        if is_heldout(conv.conversation_id):
            continue
        pending: list[str] = []
        for t in conv.turns:
            if t.role == "user":
                pending.append(t.text)
                continue
            if t.role != "agent" or not pending:
                continue
            text = " ".join(pending)
            pending = []
            label: str | None = None
            if t.template_id and t.template_id in kb.templates:
                label = t.template_id
            elif t.recommended:
                label = RECOMMEND_LABEL
            elif t.intent and t.intent in intent_template:
                label = intent_template[t.intent]
            if label is None:
                continue
            if label != RECOMMEND_LABEL:
                used[label] += 1
                with_items[label] += bool(t.recommended)
            out.append(Example(text, label, conv.conversation_id))
    rates = {tid: with_items[tid] / n for tid, n in used.items()}
    seen: set[tuple[str, str]] = set()
    unique = []
    for e in out:  # the same message answered the same way teaches once
        key = (" ".join(e.text.lower().split()), e.label)
        if key not in seen:
            seen.add(key)
            unique.append(e)
    return unique, rates


def handoff_template(kb: KnowledgeBase, rs: RouterSettings) -> str | None:
    """The template of a handoff intent the logs used most (the first one if none was used)."""
    ids = [t.id for t in kb.templates.values() if t.intent in rs.handoff_intents]
    used = Counter(t.template_id for conv in kb.transcripts for t in conv.turns if t.template_id in ids)
    return used.most_common(1)[0][0] if used else (ids[0] if ids else None)


def written_examples(
    kb: KnowledgeBase, rs: RouterSettings, with_items: bool = False, rates: dict[str, float] | None = None
) -> list[Example]:
    """Each template's intent name ("contact human") and text, the written out-of-scope set,
    the written chitchat set (labelled ``__chitchat__``: :func:`train_router` gives each to
    the KB's nearest greeting/thanks template when it has some), and with ``with_items``
    (the logs answer some requests with items) the written ways of asking for items and,
    when the KB has a ``both`` intent (``rates``: per template the share of its logged turns
    with items), the written stock/fit questions filled with catalogue names
    (:func:`stock_fit_examples`, labelled ``__stock_fit__`` until :func:`train_router` gives
    each to the nearest ``both`` template); with ``with_items`` also the written requests for
    items naming a product (``PRODUCT_RECOMMEND``, ``__recommend__``) and service questions naming
    a product (``PRODUCT_SERVICE``, labelled ``__product_service__`` until :func:`train_router`
    gives each to the nearest ``service`` template), filled the same way. Templates the logs
    never used get an example this way too."""
    out = [Example(t.intent.replace("_", " "), t.id, f"template:{t.id}") for t in kb.templates.values()]
    out += [Example(t.text, t.id, f"template:{t.id}") for t in kb.templates.values()]
    out += [Example(t, OUT_OF_SCOPE_LABEL, f"oos:{i % 5}") for i, t in enumerate(route_examples.OUT_OF_SCOPE)]
    handoff = handoff_template(kb, rs)
    if handoff:  # ways of asking for a person, when the shop has a template to hand off with
        out += [Example(t, handoff, f"handoff:{i % 5}") for i, t in enumerate(route_examples.HANDOFF)]
    out += [Example(t, CHITCHAT_LABEL, f"chitchat:{i % 5}") for i, t in enumerate(route_examples.CHITCHAT)]
    if with_items:
        out += [Example(t, RECOMMEND_LABEL, f"recommend:{i % 5}") for i, t in enumerate(route_examples.RECOMMEND)]
        if both_templates(kb, rs, rates or {}):
            out += [Example(t, STOCK_FIT_LABEL, f"stock_fit:{i % 5}") for i, t in enumerate(stock_fit_examples(kb))]
        filled = stock_fit_examples(kb, phrases=route_examples.PRODUCT_RECOMMEND)
        out += [Example(t, RECOMMEND_LABEL, f"product_recommend:{i % 5}") for i, t in enumerate(filled)]
        filled = stock_fit_examples(kb, phrases=route_examples.PRODUCT_SERVICE)
        out += [Example(t, PRODUCT_SERVICE_LABEL, f"product_service:{i % 5}") for i, t in enumerate(filled)]
    return out


def both_templates(kb: KnowledgeBase, rs: RouterSettings, rates: dict[str, float]) -> list[str]:
    """The templates whose route is ``both`` (:func:`_class_route`)."""
    return sorted(t for t in kb.templates if _class_route(t, kb, rs, rates) == "both")


def short_name(item: Any) -> str:
    """How a customer names an item: its first alias, else the title's first three words."""
    return str(item.aliases[0]) if item.aliases else " ".join(str(item.title).split()[:3])


def stock_fit_examples(
    kb: KnowledgeBase, per_phrase: int = 2, seed: int = 0, phrases: tuple[str, ...] | None = None
) -> list[str]:
    """:data:`route_examples.STOCK_FIT` (or ``phrases``) filled with the shop's catalogue names,
    ``per_phrase`` each: ``{item}`` a catalogue item, ``{device}`` an item it is compatible with in the KG
    (``compatible_with``), or any other item when the KG has none. Deterministic (``seed``)."""
    items = sorted(kb.items.values(), key=lambda i: i.id)
    if len(items) < 2:
        return []
    pairs = sorted(
        (t.subject, t.object)
        for t in kb.triples
        if t.predicate == "compatible_with" and t.subject in kb.items and t.object in kb.items
    )
    rng = np.random.default_rng(seed)
    out = []
    for phrase in route_examples.STOCK_FIT if phrases is None else phrases:
        for _ in range(per_phrase):
            if "{device}" in phrase and pairs:
                a, b = pairs[rng.integers(len(pairs))]
                item, device = kb.items[a], kb.items[b]
            else:
                i, j = rng.choice(len(items), 2, replace=False)
                item, device = items[int(i)], items[int(j)]
            text = phrase.replace("{item}", short_name(item)).replace("{device}", short_name(device))
            out.append(text.lower() if rng.random() < 0.5 else text)
    return list(dict.fromkeys(out))


def to_nearest_chitchat_template(
    examples: list[Example], x: np.ndarray, kb: KnowledgeBase, rs: RouterSettings
) -> list[Example]:
    """The written chitchat examples relabelled to the KB's chitchat template (greeting,
    thanks...) whose examples are closest on average (cosine to the normalised mean), so a
    written "bye for now" teaches the shop's own thanks/goodbye template; unchanged when the
    KB has no chitchat template."""
    ids = sorted(
        {e.label for e in examples if e.label in kb.templates and kb.templates[e.label].intent in rs.chitchat_intents}
    )
    return to_nearest_template(examples, x, CHITCHAT_LABEL, ids)


def to_nearest_template(examples: list[Example], x: np.ndarray, placeholder: str, ids: list[str]) -> list[Example]:
    """The examples labelled ``placeholder`` relabelled to the template of ``ids`` whose
    examples are closest on average (cosine to the normalised mean of their embeddings ``x``);
    unchanged when ``ids`` is empty."""
    labels = np.asarray([e.label for e in examples])
    ids = [i for i in ids if (labels == i).any()]
    if not ids:
        return examples
    cent = np.stack([x[labels == i].mean(axis=0) for i in ids])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True) + 1e-9
    near = (x @ cent.T).argmax(axis=1)
    return [Example(e.text, ids[near[k]], e.group) if e.label == placeholder else e for k, e in enumerate(examples)]


def logs_hash(kb: KnowledgeBase, settings: Settings) -> str:
    examples, rates = log_examples(kb)
    rs = settings.router
    payload = {
        "v": FORMAT_VERSION,
        "embedder": settings.retrieval.embedder,
        "examples": [(e.text, e.label) for e in examples],
        "routes": {t.id: t.intent for t in kb.templates.values()},
        "written": [
            route_examples.OUT_OF_SCOPE,
            route_examples.CHITCHAT,
            route_examples.ESCALATION,
            route_examples.HANDOFF,
            route_examples.RECOMMEND,
            route_examples.STOCK_FIT,
            stock_fit_examples(kb),
            route_examples.PRODUCT_RECOMMEND,
            route_examples.PRODUCT_SERVICE,
        ],
        "settings": rs.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def group_key(label: str, kb: KnowledgeBase) -> str:
    """The group of a class: a template's intent (its siblings answer the same question), else the label."""
    return kb.templates[label].intent if label in kb.templates else label


def class_groups(classes: list[str], kb: KnowledgeBase) -> tuple[np.ndarray, list[str]]:
    """Per class its group index, and the group names (intents and special labels)."""
    names = list(dict.fromkeys(group_key(c, kb) for c in classes))
    return np.asarray([names.index(group_key(c, kb)) for c in classes], dtype=np.int64), names


def _class_route(label: str, kb: KnowledgeBase, rs: RouterSettings, rates: dict[str, float]) -> str:
    """A class's route. A template's route is its intent's: ``both`` when one of the intent's
    templates was answered with items in at least ``router.both_rate`` of its logged turns
    (a stock question is answered "in stock" or "out of stock, here are alternatives": which
    one depends on the catalogue, not on the words, so the whole intent may need items)."""
    if label == RECOMMEND_LABEL:
        return "recommend"
    if label == CHITCHAT_LABEL:
        return "chitchat"
    if label == OUT_OF_SCOPE_LABEL:
        return "out_of_scope"
    intent = kb.templates[label].intent
    if intent in rs.handoff_intents:
        return "handoff"
    if intent in rs.chitchat_intents:
        return "chitchat"
    siblings = [t.id for t in kb.templates.values() if t.intent == intent]
    return "both" if max(rates.get(t, 0.0) for t in siblings) >= rs.both_rate else "service"


def fit_logistic(texts: list[str], emb: np.ndarray, y: list[str], c: float) -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    vectorizer = make_vectorizer().fit(texts)
    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    model.fit(features(vectorizer, texts, emb), y)
    return vectorizer, model


def choose_threshold(
    probs: np.ndarray, classes: list[str], truth: list[str], intent_of: dict[str, str] | None = None
) -> tuple[float, dict[str, Any]]:
    """The confidence threshold with the best utility on the calibration set: 1 for an
    in-scope message kept and answered with the right intent (``intent_of`` maps a template
    to its intent: a sibling template of the same intent is not an unrelated answer), 1 for
    an out-of-scope message refused, 0.5 for a wrongly classified in-scope message refused
    (a clarifying question beats a wrong answer), 0 otherwise.

    One-standard-error rule: the lowest threshold whose utility is within one standard error
    (of the best threshold's mean utility over the calibration messages) of the best, so a
    gain of one or two calibration messages does not buy a threshold that refuses more real
    questions (the calibration messages are logged wording; customers' new wording is less
    confident). ``probs`` may be per intent group (the classes then are the groups)."""
    intent_of = intent_of or {}
    oos = classes.index(OUT_OF_SCOPE_LABEL) if OUT_OF_SCOPE_LABEL in classes else -1
    masked = probs.copy()
    if oos >= 0:
        masked[:, oos] = -1.0
    best = masked.argmax(axis=1)
    conf = masked.max(axis=1)
    top_is_oos = probs.argmax(axis=1) == oos if oos >= 0 else np.zeros(len(truth), bool)
    is_oos = np.asarray([t == OUT_OF_SCOPE_LABEL for t in truth])
    right = np.asarray([intent_of.get(classes[b], classes[b]) == intent_of.get(t, t) for b, t in zip(best, truth)])
    candidates = np.unique(np.concatenate([[0.0], conf]))
    scores = []
    for tau in candidates:
        refused = top_is_oos | (conf < tau)
        utility = np.where(is_oos, refused, np.where(refused, np.where(right, 0.0, 0.5), right))
        scores.append(float(np.mean(utility)))
    best = int(np.argmax(scores))
    refused = top_is_oos | (conf < candidates[best])
    u_best = np.where(is_oos, refused, np.where(refused, np.where(right, 0.0, 0.5), right)).astype(float)
    se = float(u_best.std(ddof=1) / np.sqrt(len(u_best))) if len(u_best) > 1 else 0.0
    k = next(i for i, v in enumerate(scores) if v >= scores[best] - se)
    tau = float(candidates[k])
    refused = top_is_oos | (conf < tau)
    info = {
        "best_utility": round(scores[best], 4),
        "best_threshold": round(float(candidates[best]), 4),
        "standard_error": round(se, 4),
        "calibration_messages": len(truth),
        "calibration_out_of_scope": int(is_oos.sum()),
        "utility": round(scores[k], 4),
        "intent_accuracy_kept": round(float(right[~is_oos & ~refused].mean()) if (~is_oos & ~refused).any() else 0, 4),
        "oos_recall": round(float(refused[is_oos].mean()) if is_oos.any() else 0.0, 4),
        "in_scope_refused": round(float(refused[~is_oos].mean()) if (~is_oos).any() else 0.0, 4),
    }
    return tau, info


COMPOUND_JOINS = (", ", ". ", "; ", " - ")
COMPOUND_SLACK = 0.02


def calibrate_compound(
    texts: list[str],
    labels: list[str],
    routes: dict[str, str],
    classes: list[str],
    probs_of: Callable[[list[str], np.ndarray], np.ndarray],
    embedder: TextEmbedder,
    known: dict[str, np.ndarray],
    n: int = 120,
    seed: int = 0,
    class_group: np.ndarray | None = None,
) -> tuple[tuple[float, float] | None, dict[str, Any]]:
    """The compound ('both') thresholds, chosen on the calibration messages with the model
    fitted without them. Positives: a service question and a request for items of the
    calibration split joined by punctuation (either order); negatives: two service
    questions or two requests for items joined the same way, and the calibration messages
    that have two clauses or more on their own. See :func:`choose_compound_thresholds`."""
    service = [t for t, lab in zip(texts, labels) if routes.get(lab) in COMPOUND_SERVICE_ROUTES]
    items = [t for t, lab in zip(texts, labels) if lab == RECOMMEND_LABEL]
    if len(service) < 2 or len(items) < 2:
        return None, {"compound": "too few calibration messages"}
    rng = np.random.default_rng(seed)

    def join(a: list[str], b: list[str], k: int) -> list[str]:
        out = []
        for _ in range(k):
            u, v = a[rng.integers(len(a))], b[rng.integers(len(b))]
            if u == v:
                continue
            if rng.random() < 0.5:
                u, v = v, u
            u = u.rstrip(" ,;:")
            out.append(
                u + (" " if u.endswith((".", "?", "!")) else COMPOUND_JOINS[rng.integers(len(COMPOUND_JOINS))]) + v
            )
        return out

    pos = join(service, items, n)
    neg = join(service, service, n // 2) + join(items, items, n // 2)
    neg += [t for t in texts if len(clauses(t)) >= 2]
    messages = [(m, True) for m in pos] + [(m, False) for m in neg]
    parts = [clauses(m) for m, _ in messages]
    vecs = dict(known)
    vecs.update({t.strip(" ,.;:-\u2013\u2014"): v for t, v in known.items()})
    todo = sorted({c for ps in parts for c in ps if c not in vecs})
    if todo:
        vecs.update(zip(todo, np.asarray(embedder.embed(todo), dtype=np.float32)))
    group = class_group if class_group is not None else np.arange(len(classes))
    g_route = [""] * (int(group.max()) + 1)
    for c, g in zip(classes, group):
        g_route[int(g)] = routes.get(c, "")
    rec = int(group[classes.index(RECOMMEND_LABEL)])
    best_s, best_r = np.zeros(len(messages)), np.zeros(len(messages))
    for i, ps in enumerate(parts):
        if len(ps) < 2:
            continue
        pr = group_sum(probs_of(ps, np.stack([vecs[c] for c in ps])), group)
        top = pr.argmax(axis=1)
        s = [pr[k, b] for k, b in enumerate(top) if g_route[b] in COMPOUND_SERVICE_ROUTES]
        r = [pr[k, rec] for k, b in enumerate(top) if b == rec]
        best_s[i], best_r[i] = max(s, default=0.0), max(r, default=0.0)
    return choose_compound_thresholds(best_s, best_r, np.asarray([p for _, p in messages]))


def choose_compound_thresholds(
    service: np.ndarray, items: np.ndarray, positive: np.ndarray
) -> tuple[tuple[float, float] | None, dict[str, Any]]:
    """The strictest (service, recommend) thresholds (largest sum) whose balanced accuracy
    (the mean of the positives found and the negatives left alone) is within ``COMPOUND_SLACK``
    of the best. The synthetic negatives are easier than real single-request messages with
    a shopping-sounding clause ("I found it cheaper elsewhere, will you match it?"), and
    compound messages are rare, so among near-equal choices the stricter one is taken.
    ``service`` / ``items``: per message, the best probability of a clause whose best class
    is a service template / ``__recommend__`` (0 when none)."""
    if not positive.any() or positive.all():
        return None, {"compound": "no positives or no negatives"}
    gs, gr = np.round(np.arange(0.2, 0.91, 0.05), 2), np.round(np.arange(0.3, 0.96, 0.05), 2)
    acc = np.zeros((len(gs), len(gr)))
    for a, ts in enumerate(gs):
        for b, tr in enumerate(gr):
            fired = (service >= ts) & (items >= tr)
            acc[a, b] = 0.5 * (fired[positive].mean() + (~fired[~positive]).mean())
    near = np.argwhere(acc >= acc.max() - COMPOUND_SLACK)
    a, b = max(near, key=lambda ab: (gs[ab[0]] + gr[ab[1]], gr[ab[1]]))
    fired = (service >= gs[a]) & (items >= gr[b])
    return (float(gs[a]), float(gr[b])), {
        "service_threshold": float(gs[a]),
        "recommend_threshold": float(gr[b]),
        "positives": int(positive.sum()),
        "negatives": int((~positive).sum()),
        "balanced_accuracy": round(float(acc[a, b]), 4),
        "best_balanced_accuracy": round(float(acc.max()), 4),
        "recall": round(float(fired[positive].mean()), 4),
        "false_positive_rate": round(float(fired[~positive].mean()), 4),
    }


def choose_escalation_threshold(
    x: Any, y: np.ndarray, c: float, beta: float = ESCALATION_BETA, repeats: int = 3, boot: int = 200
) -> tuple[float, dict[str, Any]]:
    """The escalation threshold from cross-validated probabilities (beta 0.5: a false alarm
    sends a calm customer to a queue, so precision weighs more).

    The probabilities are averaged over ``repeats`` shuffles of 5-fold cross-validation (one
    split's threshold swung between 0.35 and 0.5 with a handful of examples more or less), and
    the one-standard-error rule picks the threshold: the highest (fewest false alarms) whose
    F-beta is within one bootstrap standard error of the best threshold's, as for the
    out-of-scope threshold (:func:`choose_threshold`)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros(len(y))
    for rep in range(repeats):
        for a, b in StratifiedKFold(5, shuffle=True, random_state=rep).split(x, y):
            probs[b] += LogisticRegression(C=c, max_iter=2000).fit(x[a], y[a]).predict_proba(x[b])[:, 1] / repeats

    def f_beta(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
        tp = float((pred & (truth == 1)).sum())
        p = tp / pred.sum() if pred.sum() else 0.0
        r = tp / (truth == 1).sum() if (truth == 1).any() else 0.0
        return ((1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0), p, r

    taus = np.round(np.arange(0.1, 0.91, 0.05), 2)
    scores = [f_beta(probs >= t, y) for t in taus]
    best = max(range(len(taus)), key=lambda i: (scores[i][0], taus[i]))
    rng = np.random.default_rng(0)
    resampled = []
    for _ in range(boot):
        idx = rng.integers(0, len(y), len(y))
        resampled.append(f_beta(probs[idx] >= taus[best], y[idx])[0])
    se = float(np.std(resampled))
    chosen = max(i for i in range(len(taus)) if scores[i][0] >= scores[best][0] - se)
    return float(taus[chosen]), {
        "f_beta": round(scores[chosen][0], 4),
        "beta": beta,
        "precision": round(scores[chosen][1], 4),
        "recall": round(scores[chosen][2], 4),
        "best_threshold": float(taus[best]),
        "best_f_beta": round(scores[best][0], 4),
        "standard_error": round(se, 4),
        "repeats": repeats,
    }


def _escalation_data(kb: KnowledgeBase, rs: RouterSettings, logs: list[Example]) -> tuple[list[str], list[int]]:
    texts = [t for t, _, _ in route_examples.ESCALATION]
    labels = [int(e) for _, e, _ in route_examples.ESCALATION]
    calm = [
        e.text
        for e in logs
        if e.label in kb.templates and kb.templates[e.label].intent not in (*rs.escalate_intents, *rs.handoff_intents)
    ]
    step = max(1, len(calm) // 600)
    calm = calm[::step][:600] + list(route_examples.OUT_OF_SCOPE) + list(route_examples.CHITCHAT)
    calm += list(route_examples.RECOMMEND)
    # written service questions naming a product: calm, whatever the product (fourth round)
    calm += stock_fit_examples(kb, phrases=route_examples.PRODUCT_SERVICE)
    return texts + calm, labels + [0] * len(calm)


def router_examples(kb: KnowledgeBase, rs: RouterSettings) -> tuple[list[Example], list[Example], dict[str, float]]:
    """The logged examples, those and the written ones together (some still labelled with a
    placeholder, see :func:`resolve_labels`), and per template the share of its logged turns with items."""
    logs, rates = log_examples(kb)
    with_items = any(e.label == RECOMMEND_LABEL for e in logs)
    return logs, logs + written_examples(kb, rs, with_items=with_items, rates=rates), rates


def resolve_labels(
    examples: list[Example], x: np.ndarray, kb: KnowledgeBase, rs: RouterSettings, rates: dict[str, float]
) -> tuple[list[Example], np.ndarray]:
    """The examples as the router learns them (with their embeddings ``x``): written chitchat,
    stock/fit and product-service questions each given to the nearest template of their kind;
    those left with a placeholder (the KB has no such template) dropped."""
    examples = to_nearest_chitchat_template(examples, x, kb, rs)
    examples = to_nearest_template(examples, x, STOCK_FIT_LABEL, both_templates(kb, rs, rates))
    service = sorted(t for t in kb.templates if _class_route(t, kb, rs, rates) == "service")
    examples = to_nearest_template(examples, x, PRODUCT_SERVICE_LABEL, service)
    keep = np.asarray([e.label not in (STOCK_FIT_LABEL, PRODUCT_SERVICE_LABEL) for e in examples], dtype=bool)
    return [e for e, k in zip(examples, keep) if k], x[keep]


def train_router(kb: KnowledgeBase, embedder: TextEmbedder, settings: Settings) -> TurnClassifier:
    """Fit the router on the KB's training logs (see the module docstring)."""
    rs = settings.router
    logs, examples, rates = router_examples(kb, rs)
    if len({e.label for e in examples}) < 2:
        raise ValueError("the logs hold fewer than two kinds of answer: nothing to route between")
    esc_texts, esc_labels = _escalation_data(kb, rs, logs)
    vectors = np.asarray(embedder.embed([e.text for e in examples] + esc_texts), dtype=np.float32)
    x, x_esc = vectors[: len(examples)], vectors[len(examples) :]
    examples, x = resolve_labels(examples, x, kb, rs, rates)
    texts = [e.text for e in examples]
    y = [e.label for e in examples]

    calib = np.asarray([not e.group.startswith("template:") and is_heldout(e.group + ":router", 20) for e in examples])
    info: dict[str, Any] = {
        "examples": len(examples),
        "log_messages": len(logs),
        "per_class": dict(Counter(e.label for e in logs).most_common()),
    }
    fit_part = ~calib
    tau, compound = 0.0, None
    info["threshold"] = "configured" if rs.oos_threshold is not None else "no calibration data"
    if calib.any() and len(set(np.asarray(y)[fit_part])) >= 2:
        fit_texts = [t for t, f in zip(texts, fit_part) if f]
        vec, model = fit_logistic(fit_texts, x[fit_part], list(np.asarray(y)[fit_part]), rs.c)
        cal_texts = [t for t, c in zip(texts, calib) if c]
        cls = list(model.classes_)
        ids = np.asarray([cls.index(v) for v in np.asarray(y)[fit_part]])
        neigh = x[fit_part]

        def cal_probs(ts: list[str], e: np.ndarray) -> np.ndarray:
            lr = model.predict_proba(features(vec, ts, e))
            return np.asarray((1 - KNN_W) * lr + KNN_W * knn_vote(neigh, ids, len(cls), e))

        cal_group, cal_names = class_groups(cls, kb)
        if rs.oos_threshold is None:
            truth = [group_key(v, kb) for v in np.asarray(y)[calib]]
            tau, info["calibration"] = choose_threshold(
                group_sum(cal_probs(cal_texts, x[calib]), cal_group), cal_names, truth
            )
            info["threshold"] = "chosen on the calibration split"
        if RECOMMEND_LABEL in cls:
            routes = {c: _class_route(c, kb, rs, rates) for c in cls}
            cal_labels = list(np.asarray(y)[calib])
            compound, info["compound"] = calibrate_compound(
                cal_texts, cal_labels, routes, cls, cal_probs, embedder, dict(zip(texts, x)), class_group=cal_group
            )
    if rs.oos_threshold is not None:
        tau = rs.oos_threshold
    vectorizer, model = fit_logistic(texts, x, y, rs.c)
    classes = [str(c) for c in model.classes_]

    from sklearn.linear_model import LogisticRegression

    esc_vec = make_vectorizer().fit(esc_texts)
    xe = escalation_features(esc_vec, esc_texts, x_esc)
    esc = LogisticRegression(C=rs.escalation_c, max_iter=2000).fit(xe, esc_labels)
    info["escalation_examples"] = len(esc_texts)
    if rs.escalation_threshold is None:
        esc_tau, info["escalation_cv"] = choose_escalation_threshold(xe, np.asarray(esc_labels), rs.escalation_c)
    else:
        esc_tau = rs.escalation_threshold
    handoff = Counter(
        e.label for e in logs if e.label in kb.templates and kb.templates[e.label].intent in rs.handoff_intents
    )
    handoff_ids = [t.id for t in kb.templates.values() if t.intent in rs.handoff_intents]
    info["handoff_template"] = handoff.most_common(1)[0][0] if handoff else (handoff_ids[0] if handoff_ids else None)
    return TurnClassifier(
        classes=classes,
        class_route={c: _class_route(c, kb, rs, rates) for c in classes},
        class_intent={c: (kb.templates[c].intent if c in kb.templates else None) for c in classes},
        vectorizer=vectorizer,
        model=model,
        neighbours=x,
        neighbour_labels=np.asarray([classes.index(v) for v in y]),
        oos_threshold=round(float(tau), 4),
        logs_hash=logs_hash(kb, settings),
        embedder=settings.retrieval.embedder,
        escalation_coef=np.asarray(esc.coef_[0], dtype=np.float32),
        escalation_intercept=float(esc.intercept_[0]),
        escalation_vectorizer=esc_vec,
        escalation_threshold=round(esc_tau, 4),
        info=info,
        compound=compound,
        class_group=class_groups(classes, kb)[0],
    )


# ------------------------------------------------------------------ persistence


def router_path(settings: Settings) -> Path:
    """``<data_dir>/router/router-<8 hex of the KB folder>.pkl``, beside the index."""
    kb = str(Path(settings.kb_dir).resolve())
    return settings.data_dir / "router" / f"router-{hashlib.sha256(kb.encode()).hexdigest()[:8]}.pkl"


def save_router(router: TurnClassifier, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(router, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    meta = {
        "logs_hash": router.logs_hash,
        "embedder": router.embedder,
        "classes": len(router.classes),
        "oos_threshold": router.oos_threshold,
        "escalation_threshold": router.escalation_threshold,
        **router.info,
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_router(path: Path) -> TurnClassifier | None:
    try:  # our own file under the data folder (pickle: never point this at untrusted files)
        with path.open("rb") as fh:
            router = pickle.load(fh)
    except (OSError, EOFError, ValueError, AttributeError, ImportError, pickle.UnpicklingError) as exc:
        log.warning("router %s unreadable (%s): retraining", path, exc)
        return None
    return router if isinstance(router, TurnClassifier) else None


def load_or_train(settings: Settings, kb: KnowledgeBase, embedder: TextEmbedder) -> TurnClassifier:
    """The router for these logs: from memory, from disk when its logs hash matches, else trained
    (and saved). Changed logs or router settings change the hash, so the router is retrained."""
    key = logs_hash(kb, settings)
    with _lock:
        if key in _memory:
            return _memory[key]
        path = router_path(settings)
        router = load_router(path) if path.exists() else None
        if router is None or router.logs_hash != key:
            if router is not None:
                log.info("router %s is stale (logs changed): retraining", path)
            router = train_router(kb, embedder, settings)
            try:
                save_router(router, path)
            except OSError as exc:  # a read-only data folder: keep it in memory
                log.warning("cannot save the router to %s: %s", path, exc)
        _memory[key] = router
        return router
