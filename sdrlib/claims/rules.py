"""How a claim's verdict is reached: a claim is tested by one or more parts, each an effect oriented so that
"above 0" supports the claim, with the smallest effect that counts; each part's interval gives a word by the one
rule (:func:`sdrlib.stats.verdict`), and the parts combine into the claim's verdict (every part must hold)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..stats import Interval, verdict

# worst first: the part that decides a combined verdict is the first one with the worst word
_SEVERITY = ("fails", "undecided", "holds weakly", "holds")


@dataclass(frozen=True)
class Part:
    """One tested part of a claim: its name, its effect with an interval, and the smallest effect that counts."""

    name: str
    effect: Interval
    min_effect: float = 0.0

    @property
    def verdict(self) -> str:
        """This part's word by the one rule (stats.verdict)."""
        return verdict(self.effect, self.min_effect)


def combine(parts: tuple[Part, ...] | list[Part]) -> str:
    """A claim's verdict from its parts: "holds" when every part holds, "fails" when any part fails,
    "holds weakly" when every part holds at least weakly, "undecided" otherwise."""
    if not parts:
        raise ValueError("a claim needs at least one part")
    return min((p.verdict for p in parts), key=_SEVERITY.index)


def deciding(parts: tuple[Part, ...] | list[Part]) -> Part:
    """The part whose word is the claim's verdict (the first part with the worst word): the headline number."""
    if not parts:
        raise ValueError("a claim needs at least one part")
    return min(parts, key=lambda p: _SEVERITY.index(p.verdict))


@dataclass(frozen=True)
class Result:
    """A claim tested on one reference: its parts, its verdict, the number of networks it rests on, and the
    measures behind it (rows for a chapter's table)."""

    claim: str
    parts: tuple[Part, ...]
    n_trained: int
    n_control: int
    measures: list[dict] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The claim's verdict (see :func:`combine`)."""
        return combine(self.parts)

    @property
    def headline(self) -> Part:
        """The deciding part (see :func:`deciding`)."""
        return deciding(self.parts)

    def rows(self, fmt: str = ".3f") -> list[dict]:
        """One row per part: its effect [interval], the smallest effect that counts, the p-value of "the effect is at
        most that size", and its word."""
        return [
            {
                "claim": self.claim,
                "part": p.name,
                "effect [95 % CI]": p.effect.fmt(fmt),
                "counts from": p.min_effect,
                "p (effect <= counts from)": "" if p.effect.p is None else f"{p.effect.p:.4f}",
                "word": p.verdict,
                "networks (trained, control)": f"{self.n_trained}, {self.n_control}",
            }
            for p in self.parts
        ]
