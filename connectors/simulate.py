"""A seeded scenario simulator: realistic mentions of several brands over one simulated day.

Everything is derived from ``random.Random(seed)`` and the simulated ``start`` time passed in;
the wall clock is never read, so the same scenario and seed always give the same mentions.

Volume follows the time of day (quiet at night, peak mid-afternoon) with Poisson-distributed counts
per minute and brand. Texts are built from templates and fillers, mostly neutral or positive with
some complaints, and carry the phrases the scorer looks for: positive empathy ("the agent really
listened"), empathy deficits ("on hold for hours"), churn intent ("cancel my subscription").
Reviews carry a rating, surveys an NPS score, a few texts contain an e-mail address, phone or card
number (so redaction can be seen), and a few customers complain repeatedly.

Scenarios (``SCENARIOS``):

``calm``
    One day, every brand behaving normally.
``crisis``
    One day in which the crisis brand (``northwind-air``) collapses: from about 09:00 its negative
    share and volume rise, peak between 11:00 and 13:00 (volume ~3.5x, ~70% negative) and recover
    by 16:00, while the other brands stay calm. Four of its customers show churn intent over
    several mentions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from streams.records import Mention, MentionKind, Segment

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
"""Default simulated start time: a Monday, 00:00 UTC."""

REGIONS: tuple[str, ...] = ("na", "emea", "apac", "latam")
CHANNELS: tuple[str, ...] = ("social", "review", "survey")

_T = TypeVar("_T")

CUSTOMER_BLOCK = 100_000


@dataclass(frozen=True)
class BrandSpec:
    """A simulated brand: its name, what it sells, what people praise or complain about."""

    name: str
    display: str
    products: tuple[str, ...]
    competitors: tuple[str, ...]
    praise: tuple[str, ...]
    issues: tuple[str, ...]
    questions: tuple[str, ...]
    news: tuple[str, ...]
    crisis_issues: tuple[str, ...] = ()
    churn: tuple[str, ...] = (
        "I'm going to cancel my subscription",
        "switching to {competitor}",
        "never again",
        "closing my account",
    )
    card_numbers: bool = False
    rate_per_minute: float = 2.5
    """Mean mentions per minute over a whole day (before the diurnal shape and any crisis)."""


@dataclass(frozen=True)
class CrisisSpec:
    """One brand's crisis: a ramp from ``onset`` to ``peak_start``, a plateau, and a ramp down."""

    brand: str
    onset_hour: float = 9.0
    peak_start_hour: float = 11.0
    peak_end_hour: float = 13.0
    recovered_hour: float = 16.0
    volume_multiplier: float = 3.5
    negative_share: float = 0.70
    churn_customers: int = 4

    def intensity(self, hour: float) -> float:
        """How deep in the crisis the brand is ``hour`` hours after start: 0 = calm, 1 = peak."""
        if hour <= self.onset_hour or hour >= self.recovered_hour:
            return 0.0
        if hour < self.peak_start_hour:
            return (hour - self.onset_hour) / (self.peak_start_hour - self.onset_hour)
        if hour <= self.peak_end_hour:
            return 1.0
        return (self.recovered_hour - hour) / (self.recovered_hour - self.peak_end_hour)


@dataclass(frozen=True)
class ScenarioSpec:
    """A named scenario: which brands, for how long, and whether one of them has a crisis."""

    name: str
    description: str
    brands: tuple[BrandSpec, ...]
    hours: float = 24.0
    crisis: CrisisSpec | None = None
    repeat_complainers_per_brand: int = 2
    base_negative_share: float = 0.15
    base_positive_share: float = 0.40
    pii_share: float = 0.03


BRANDS: tuple[BrandSpec, ...] = (
    BrandSpec(
        name="northwind-air",
        display="Northwind Air",
        products=("booking", "loyalty", "baggage"),
        competitors=("SkyWays", "Aerolux", "BlueJet"),
        praise=(
            "the crew was fantastic",
            "check-in took two minutes",
            "we landed early",
            "the new seats are really comfortable",
            "they upgraded me for free",
            "the lounge was lovely",
        ),
        issues=(
            "my flight was delayed three hours",
            "they lost my bag",
            "the booking app crashed at payment",
            "my seat was changed without notice",
            "the refund never arrived",
            "they charged me twice for luggage",
        ),
        questions=(
            "allows two carry-ons on short flights",
            "flies to Lisbon in winter",
            "has wifi on the regional planes",
            "lets you change the name on a ticket",
        ),
        news=("a new route to Reykjavik", "a loyalty programme refresh", "a new fleet order"),
        crisis_issues=(
            "cancelled my flight with no warning",
            "the whole booking system is down",
            "I've been stranded at the gate since this morning",
            "I can't rebook anything, the app just errors",
            "hundreds of us are stuck at the airport",
            "they cancelled every flight out of here",
        ),
        churn=(
            "never again",
            "switching to {competitor}",
            "closing my account",
            "I'm going to cancel my subscription to their lounge pass",
        ),
    ),
    BrandSpec(
        name="globex-bank",
        display="Globex Bank",
        products=("checking", "cards", "mortgage"),
        competitors=("Hooli Bank", "Vandelay Savings"),
        praise=(
            "the new app is super fast",
            "my mortgage was approved in a day",
            "instant transfers are a lifesaver",
            "the branch staff were great",
        ),
        issues=(
            "my card was declined for no reason",
            "the app logged me out five times today",
            "a transfer has been pending for a week",
            "they charged me an overdraft fee by mistake",
        ),
        questions=(
            "supports Apple Pay on business accounts",
            "has fees for international transfers",
            "lets you freeze a card in the app",
        ),
        news=("new savings rates", "a redesigned mobile app", "longer branch hours"),
        card_numbers=True,
    ),
    BrandSpec(
        name="initech-mobile",
        display="Initech Mobile",
        products=("prepaid", "postpaid", "fiber"),
        competitors=("Soylent Wireless", "Massive Telecom"),
        praise=(
            "5G coverage in my area is excellent",
            "the fiber install was quick and clean",
            "roaming just worked abroad",
            "the new plan is cheaper and better",
        ),
        issues=(
            "no signal at home again",
            "my bill doubled without explanation",
            "the fiber keeps dropping every evening",
            "they ported my number to the wrong SIM",
        ),
        questions=(
            "offers eSIM on prepaid",
            "has unlimited data plans for families",
            "covers rural areas up north",
        ),
        news=("a new family plan", "5G in twelve more cities", "a price change next month"),
    ),
    BrandSpec(
        name="umbrella-foods",
        display="Umbrella Foods",
        products=("snacks", "frozen", "beverages"),
        competitors=("Wonka Foods", "Krusty Foods"),
        praise=(
            "the new spicy chips are amazing",
            "the frozen lasagna tastes homemade",
            "the iced tea is my new favourite",
            "the recyclable packaging is a nice touch",
        ),
        issues=(
            "the bag was half empty",
            "my frozen pizza arrived thawed",
            "the new recipe tastes awful",
            "the delivery was missing half the order",
        ),
        questions=(
            "makes a gluten-free version of the crackers",
            "still sells the lemon soda",
            "ships to Canada",
        ),
        news=("a new plant-based range", "a recall of one snack batch", "a summer flavour"),
    ),
)

SCENARIOS: dict[str, ScenarioSpec] = {
    "calm": ScenarioSpec(
        name="calm",
        description="one simulated day, every brand behaving normally",
        brands=BRANDS,
    ),
    "crisis": ScenarioSpec(
        name="crisis",
        description=(
            "one simulated day: northwind-air's sentiment collapses from ~09:00, peaks "
            "11:00-13:00 and recovers by 16:00 while the other brands stay calm; some of its "
            "customers show churn intent"
        ),
        brands=BRANDS,
        crisis=CrisisSpec(brand="northwind-air"),
    ),
}

# Source → (kinds with weights, segment channel, share of all mentions).
_SOURCES: tuple[tuple[str, tuple[tuple[MentionKind, float], ...], str, float], ...] = (
    (
        "reddit",
        ((MentionKind.POST, 0.35), (MentionKind.COMMENT, 0.5), (MentionKind.REPLY, 0.15)),
        "social",
        0.28,
    ),
    ("mastodon", ((MentionKind.POST, 0.7), (MentionKind.REPLY, 0.3)), "social", 0.14),
    ("bluesky", ((MentionKind.POST, 0.7), (MentionKind.REPLY, 0.3)), "social", 0.20),
    ("hackernews", ((MentionKind.COMMENT, 1.0),), "social", 0.06),
    ("appstore", ((MentionKind.REVIEW, 1.0),), "review", 0.17),
    ("survey", ((MentionKind.SURVEY, 1.0),), "survey", 0.15),
)

_EMPATHY_POSITIVE: tuple[str, ...] = (
    "the agent really listened",
    "they were so caring and understanding",
    "support made it feel personal",
    "the person on the phone was patient and kind",
    "someone actually listened to me",
)
_EMPATHY_DEFICIT: tuple[str, ...] = (
    "nobody cares",
    "I was on hold for hours",
    "it's like talking to a robot",
    "still waiting for an answer",
    "they just ignored my emails",
    "nobody answers the phone",
)
_CLOSERS_POSITIVE: tuple[str, ...] = ("Thanks!", "Well done.", "Highly recommend.", "Love it.", "")
_CLOSERS_NEGATIVE: tuple[str, ...] = (
    "Absolutely ridiculous.",
    "Terrible service.",
    "So frustrating.",
    "Unacceptable.",
    "Awful.",
    "This is a disaster.",
)
_OPENERS: tuple[str, ...] = (
    "Honestly, ",
    "Ok so ",
    "Update: ",
    "PSA: ",
    "Not gonna lie, ",
    "Quick one: ",
    "So ",
    "Today: ",
)
_TAILS: dict[str, tuple[str, ...]] = {
    "positive": ("#happycustomer", "10/10", ":)", "Made my day.", "Keep it up!", "#{tag}"),
    "neutral": ("Thanks in advance.", "Curious.", "#{tag}", "Any tips?", "(asking for a friend)"),
    "negative": ("#fail", "Day {n} of this.", "#{tag}", "Fix it.", "Every. Single. Time.", ":("),
}
_FIRST_NAMES: tuple[str, ...] = ("jane", "sam", "alex", "maria", "li", "omar", "priya", "tom")

_POSITIVE_TEMPLATES: tuple[str, ...] = (
    "Shoutout to {display}: {praise}. {closer}",
    "Really happy with {display} today, {praise}.",
    "Have to say {display} got it right, {praise}. {closer}",
    "{display} {product} is really great, {praise}.",
    "Credit where it's due, {display}: {praise}!",
    "Great experience with {display} {product}. {closer}",
)
_NEUTRAL_TEMPLATES: tuple[str, ...] = (
    "Does anyone know if {display} {question}?",
    "{display} announced {news} today.",
    "Comparing {display} and {competitor} for {product}, any thoughts?",
    "Reading about {news} from {display}.",
    "Anyone here using {display} {product} in {region}?",
    "Question for {display}: is {product} available in {region} yet?",
)
_NEUTRAL_FEEDBACK_TEMPLATES: tuple[str, ...] = (
    "It's okay. {display} {product} does the job.",
    "{display} {product} is fine, nothing special.",
    "Average experience with {display}, {product} works as expected.",
    "Decent {product} from {display}, similar to {competitor}.",
)
_NEGATIVE_TEMPLATES: tuple[str, ...] = (
    "{display}: {issue}. {closer}",
    "Really disappointed with {display}: {issue}.",
    "Worst experience with {display} ever, {issue}. {closer}",
    "Hey {display}, {issue} and I'm furious.",
    "Fed up with {display}, {issue}. {closer}",
    "So angry at {display} right now, {issue}. {closer}",
)
_REGION_NAMES: dict[str, str] = {
    "na": "North America",
    "emea": "Europe",
    "apac": "Asia",
    "latam": "Latin America",
}


@dataclass(frozen=True)
class _Draft:
    """A mention before ids are assigned (ids follow event-time order per brand)."""

    created_at: datetime
    brand: str
    source: str
    kind: MentionKind
    text: str
    author: str
    customer_id: str | None
    rating: int | None
    nps: int | None
    segment: Segment


def diurnal_factor(hour_of_day: float) -> float:
    """Relative volume by time of day: lowest at 03:00 (0.2), highest at 15:00 (1.8), mean 1."""
    return 1.0 + 0.8 * math.cos(2.0 * math.pi * (hour_of_day - 15.0) / 24.0)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0.0:
        return 0
    if lam > 30.0:
        # Normal approximation: Knuth's method is O(lambda) and underflows for large lambda.
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _pick_weighted(rng: random.Random, items: Sequence[tuple[_T, float]]) -> _T:
    x = rng.random() * sum(w for _, w in items)
    for item, weight in items:
        x -= weight
        if x < 0.0:
            return item
    return items[-1][0]


class _Writer:
    """Builds drafts for one scenario from one random generator."""

    def __init__(self, spec: ScenarioSpec, rng: random.Random, start: datetime) -> None:
        self.spec = spec
        self.rng = rng
        self.start = start
        self.brand_index = {b.name: i for i, b in enumerate(spec.brands)}

    # -- texts ------------------------------------------------------------------------------------

    def _fill(
        self, template: str, brand: BrandSpec, region: str, *, issue: str, closer: str
    ) -> str:
        rng = self.rng
        text = template.format(
            display=brand.display,
            praise=rng.choice(brand.praise),
            issue=issue,
            question=rng.choice(brand.questions),
            news=rng.choice(brand.news),
            competitor=rng.choice(brand.competitors),
            product=rng.choice(brand.products),
            region=_REGION_NAMES[region],
            closer=closer,
        )
        return text.strip()

    def _pii(self, brand: BrandSpec) -> str:
        rng = self.rng
        name = rng.choice(_FIRST_NAMES)
        choice = rng.random()
        if brand.card_numbers and choice < 0.25:
            return "My card 4111 1111 1111 1111 was charged twice."
        if choice < 0.6:
            return f"Email me at {name}.{rng.randrange(10, 99)}@example.com"
        return f"Call me on +1 415 555 {rng.randrange(1000, 9999)}"

    def text(
        self,
        brand: BrandSpec,
        sentiment: str,
        region: str,
        *,
        in_crisis: bool,
        feedback: bool = False,
        churn: bool = False,
        deficit: bool | None = None,
    ) -> str:
        """One mention text of the given sentiment (positive, neutral, negative)."""
        rng = self.rng
        if sentiment == "positive":
            text = self._fill(
                rng.choice(_POSITIVE_TEMPLATES),
                brand,
                region,
                issue="",
                closer=rng.choice(_CLOSERS_POSITIVE),
            )
            if rng.random() < 0.25:
                text += f" {rng.choice(_EMPATHY_POSITIVE).capitalize()}."
        elif sentiment == "neutral":
            templates = _NEUTRAL_FEEDBACK_TEMPLATES if feedback else _NEUTRAL_TEMPLATES
            text = self._fill(rng.choice(templates), brand, region, issue="", closer="")
        else:
            pool = brand.crisis_issues if in_crisis and brand.crisis_issues else brand.issues
            text = self._fill(
                rng.choice(_NEGATIVE_TEMPLATES),
                brand,
                region,
                issue=rng.choice(pool),
                closer=rng.choice(_CLOSERS_NEGATIVE),
            )
            if deficit is None:
                deficit = rng.random() < (0.5 if in_crisis else 0.3)
            if deficit:
                text += f" {rng.choice(_EMPATHY_DEFICIT).capitalize()}."
            if churn or rng.random() < 0.05:
                phrase = rng.choice(brand.churn).format(competitor=rng.choice(brand.competitors))
                text += f" {phrase[0].upper()}{phrase[1:]}."
        # Openers and tails add the variety of real posts without changing what they say.
        if rng.random() < 0.3:
            opener = rng.choice(_OPENERS)
            if not text.startswith(brand.display):
                text = text[0].lower() + text[1:]
            text = opener + text
        if rng.random() < 0.35:
            tail = rng.choice(_TAILS[sentiment])
            tag = brand.display.replace(" ", "")
            text += " " + tail.format(tag=tag, n=rng.randint(2, 9))
        if rng.random() < self.spec.pii_share:
            text += f" {self._pii(brand)}"
        return text

    # -- mentions ---------------------------------------------------------------------------------

    def draft(
        self,
        brand: BrandSpec,
        created_at: datetime,
        sentiment: str,
        *,
        in_crisis: bool,
        source: str | None = None,
        customer_id: str | None = None,
        churn: bool = False,
        deficit: bool | None = None,
    ) -> _Draft:
        rng = self.rng
        if source is None:
            source = _pick_weighted(rng, [(s[0], s[3]) for s in _SOURCES])
        _, kinds, channel, _ = next(s for s in _SOURCES if s[0] == source)
        kind = _pick_weighted(rng, kinds)
        region = rng.choice(REGIONS)
        text = self.text(
            brand,
            sentiment,
            region,
            in_crisis=in_crisis,
            feedback=kind in (MentionKind.REVIEW, MentionKind.SURVEY),
            churn=churn,
            deficit=deficit,
        )
        rating = nps = None
        if kind is MentionKind.REVIEW:
            rating = {"positive": rng.choice((4, 5, 5)), "neutral": rng.choice((3, 3, 4))}.get(
                sentiment, rng.choice((1, 1, 2))
            )
        if kind is MentionKind.SURVEY:
            nps = {"positive": rng.randint(9, 10), "neutral": rng.randint(7, 8)}.get(
                sentiment, rng.randint(0, 6)
            )
        if customer_id is None and kind in (MentionKind.REVIEW, MentionKind.SURVEY):
            customer_id = self.customer(brand, rng.randrange(1_000, CUSTOMER_BLOCK))
        author = (
            f"user-{hash_str(customer_id) % 1_000_000:06d}"
            if customer_id
            else f"user-{rng.randrange(1_000_000):06d}"
        )
        return _Draft(
            created_at=created_at,
            brand=brand.name,
            source=source,
            kind=kind,
            text=text,
            author=author,
            customer_id=customer_id,
            rating=rating,
            nps=nps,
            segment=Segment(product=rng.choice(brand.products), region=region, channel=channel),
        )

    def customer(self, brand: BrandSpec, n: int) -> str:
        """Customer ids are unique across brands: each brand owns a block of numbers.

        Numbers below 1000 are the scenario's scripted customers; reviews and surveys draw the
        rest at random from a realistic base, so a random customer rarely complains twice.
        """
        return f"cust-{self.brand_index[brand.name] * CUSTOMER_BLOCK + n:06d}"

    def sentiment(self, p_negative: float) -> str:
        x = self.rng.random()
        if x < p_negative:
            return "negative"
        # The remaining share keeps the calm ratio of positive to neutral.
        calm_rest = 1.0 - self.spec.base_negative_share
        p_positive = (1.0 - p_negative) * self.spec.base_positive_share / calm_rest
        return "positive" if x < p_negative + p_positive else "neutral"

    def at(self, hours: float) -> datetime:
        # Millisecond precision keeps JSON round trips exact and ordering stable.
        return self.start + timedelta(milliseconds=round(hours * 3_600_000))


def hash_str(value: str | None) -> int:
    """A stable string hash (``hash()`` is salted per process, which would break determinism)."""
    h = 2166136261
    for byte in (value or "").encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def _background(writer: _Writer, hours: float, rate_scale: float) -> list[_Draft]:
    spec, rng = writer.spec, writer.rng
    start_hour = writer.start.hour + writer.start.minute / 60.0
    drafts: list[_Draft] = []
    for minute in range(math.ceil(hours * 60)):
        t = minute / 60.0
        for brand in spec.brands:
            crisis = spec.crisis if spec.crisis and spec.crisis.brand == brand.name else None
            intensity = crisis.intensity(t) if crisis else 0.0
            volume = 1.0 + (crisis.volume_multiplier - 1.0) * intensity if crisis else 1.0
            p_negative = spec.base_negative_share
            if crisis:
                p_negative += (crisis.negative_share - spec.base_negative_share) * intensity
            lam = brand.rate_per_minute * diurnal_factor(start_hour + t) * volume * rate_scale
            for _ in range(_poisson(rng, lam)):
                offset = t + rng.random() / 60.0
                if offset >= hours:
                    continue
                drafts.append(
                    writer.draft(
                        brand,
                        writer.at(offset),
                        writer.sentiment(p_negative),
                        in_crisis=intensity > 0.0,
                    )
                )
    return drafts


def _repeat_complainers(writer: _Writer, hours: float) -> list[_Draft]:
    """A few customers per brand who complain several times over the day (no churn intent)."""
    spec, rng = writer.spec, writer.rng
    drafts: list[_Draft] = []
    for brand in spec.brands:
        for i in range(spec.repeat_complainers_per_brand):
            customer = writer.customer(brand, 900 + i)
            source = rng.choice(("appstore", "survey"))
            for _ in range(rng.randint(3, 5)):
                t = rng.uniform(0.0, hours)
                drafts.append(
                    writer.draft(
                        brand,
                        writer.at(t),
                        "negative",
                        in_crisis=False,
                        source=source,
                        customer_id=customer,
                        deficit=True,
                    )
                )
    return drafts


def _churners(writer: _Writer, hours: float) -> list[_Draft]:
    """Crisis-brand customers whose complaints escalate to churn intent during the crisis."""
    spec, rng = writer.spec, writer.rng
    crisis = spec.crisis
    if crisis is None:
        return []
    brand = next(b for b in spec.brands if b.name == crisis.brand)
    drafts: list[_Draft] = []
    for i in range(crisis.churn_customers):
        customer = writer.customer(brand, 950 + i)
        source = rng.choice(("appstore", "survey"))
        count = rng.randint(3, 5)
        first = rng.uniform(crisis.onset_hour + 0.5, crisis.peak_start_hour + 0.5)
        last = rng.uniform(crisis.peak_end_hour, crisis.recovered_hour)
        for k in range(count):
            t = first + (last - first) * k / (count - 1)
            if t >= hours:
                break
            drafts.append(
                writer.draft(
                    brand,
                    writer.at(t),
                    "negative",
                    in_crisis=True,
                    source=source,
                    customer_id=customer,
                    deficit=k >= 1,
                    churn=k >= count - 2,
                )
            )
    return drafts


def generate(
    scenario: str = "crisis",
    seed: int = 7,
    *,
    start: datetime = DEFAULT_START,
    hours: float | None = None,
    rate_scale: float = 1.0,
) -> list[Mention]:
    """All mentions of a scenario, sorted by ``created_at`` then ``id``.

    ``start`` is the simulated start (aware; the scenario's clock, never the wall clock);
    ``hours`` truncates or extends the scenario (default: its own length, one day); ``rate_scale``
    multiplies the background volume (benchmarks use it to reach 50,000+ mentions). Ids are
    ``simulate:<brand>:<n>``, numbered in event-time order per brand, unique for one seed.
    ``fetched_at`` equals ``created_at``.
    Raises ``KeyError`` for an unknown scenario and ``ValueError`` for a bad argument.
    """
    if scenario not in SCENARIOS:
        raise KeyError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(SCENARIOS))}")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if rate_scale <= 0.0:
        raise ValueError("rate_scale must be positive")
    spec = SCENARIOS[scenario]
    length = spec.hours if hours is None else hours
    if length <= 0.0:
        raise ValueError("hours must be positive")
    writer = _Writer(spec, random.Random(seed), start.astimezone(UTC))
    drafts = _background(writer, length, rate_scale)
    drafts += _repeat_complainers(writer, length)
    drafts += _churners(writer, length)
    # Sort with a deterministic tie-break on everything that distinguishes two drafts.
    drafts.sort(key=lambda d: (d.created_at, d.brand, d.source, d.text))
    counters: dict[str, int] = {}
    mentions: list[Mention] = []
    for d in drafts:
        n = counters.get(d.brand, 0) + 1
        counters[d.brand] = n
        mentions.append(
            Mention(
                id=f"simulate:{d.brand}:{n}",
                source=d.source,
                kind=d.kind,
                brand=d.brand,
                text=d.text,
                author=d.author,
                customer_id=d.customer_id,
                url=_url(d.source, d.brand, n),
                created_at=d.created_at,
                fetched_at=d.created_at,
                rating=d.rating,
                nps=d.nps,
                segment=d.segment,
                lang="en",
            )
        )
    mentions.sort(key=lambda m: (m.created_at, m.id))
    return mentions


def _url(source: str, brand: str, n: int) -> str | None:
    return {
        "reddit": f"https://www.reddit.com/r/{brand}/comments/sim{n}",
        "mastodon": f"https://mastodon.social/@{brand}/{n}",
        "bluesky": f"https://bsky.app/profile/{brand}.bsky.social/post/sim{n}",
        "hackernews": f"https://news.ycombinator.com/item?id={n}",
        "appstore": f"https://apps.apple.com/app/{brand}/reviews/{n}",
    }.get(source)


class SimulateSettings(BaseModel):
    """Settings of a ``simulate`` connector instance (its ``settings:`` block in the YAML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str = Field(default="crisis", description="scenario name")
    seed: int = Field(default=7, description="random seed (same seed, same mentions)")
    hours: float | None = Field(default=None, gt=0, description="scenario length in hours")
    rate_scale: float = Field(default=1.0, gt=0, description="multiply the mention volume")
    page_size: int = Field(default=500, ge=1, description="mentions per fetch")


class SimulateSource:
    """A finite ``Source`` over one generated scenario; the cursor is the index of the next mention.

    The mentions are generated lazily on the first ``fetch`` and served ``page_size`` at a time.
    ``name`` defaults to ``simulate:<scenario>``; a connector instance passes its own.
    """

    def __init__(
        self,
        scenario: str = "crisis",
        seed: int = 7,
        *,
        start: datetime = DEFAULT_START,
        hours: float | None = None,
        rate_scale: float = 1.0,
        page_size: int = 500,
        name: str | None = None,
    ) -> None:
        self.name = name or f"simulate:{scenario}"
        self.scenario = scenario
        self.seed = seed
        self.start = start
        self.hours = hours
        self.rate_scale = rate_scale
        self.page_size = page_size
        self._mentions: list[Mention] | None = None

    @classmethod
    def for_instance(cls, name: str, brand: str, settings: SimulateSettings) -> SimulateSource:
        """The source of a ``simulate`` instance (``brand`` is informational: a scenario holds
        several brands)."""
        return cls(
            settings.scenario,
            settings.seed,
            hours=settings.hours,
            rate_scale=settings.rate_scale,
            page_size=settings.page_size,
            name=name,
        )

    def check(self) -> list[str]:
        """Problems with the configuration (unknown scenario, bad page size, scale or start)."""
        problems: list[str] = []
        if self.scenario not in SCENARIOS:
            problems.append(
                f"unknown scenario {self.scenario!r}; known: {', '.join(sorted(SCENARIOS))}"
            )
        if self.page_size < 1:
            problems.append(f"page_size must be at least 1, got {self.page_size}")
        if self.rate_scale <= 0.0:
            problems.append(f"rate_scale must be positive, got {self.rate_scale}")
        if self.hours is not None and self.hours <= 0.0:
            problems.append(f"hours must be positive, got {self.hours}")
        if self.start.tzinfo is None:
            problems.append("start must be timezone-aware")
        return problems

    @property
    def mentions(self) -> list[Mention]:
        """The whole generated scenario (generated on first use)."""
        if self._mentions is None:
            self._mentions = generate(
                self.scenario,
                self.seed,
                start=self.start,
                hours=self.hours,
                rate_scale=self.rate_scale,
            )
        return self._mentions

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        """The next page from index ``cursor``; the last page comes with a ``None`` cursor."""
        try:
            index = 0 if cursor is None else int(cursor)
        except ValueError:
            raise ValueError(f"{self.name}: cursor must be an index, got {cursor!r}") from None
        if index < 0:
            raise ValueError(f"{self.name}: cursor must not be negative, got {cursor!r}")
        mentions = self.mentions
        end = min(index + max(self.page_size, 1), len(mentions))
        page = mentions[index:end]
        return page, (str(end) if end < len(mentions) else None)
