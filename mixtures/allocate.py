"""Budget allocation across buckets: weights (explicit, temperature, UniMax, natural), epoch caps,
clear failures, optional redistribution. Pure functions of the bucket sizes."""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.spec import SpecError

WEIGHT_SUM_TOLERANCE = 1e-6


@dataclass
class Allocation:
    weights: dict[str, float]  # final weight of each bucket (after redistribution)
    requested: dict[str, float]  # the weight the spec asked for
    tokens: dict[str, int]  # allocated tokens per bucket
    caps: dict[str, float]  # max epochs per bucket
    redistributed: dict[str, int] = field(default_factory=dict)  # tokens moved in (+) or out (-)


def _lang_of(bucket: str, bucket_by: list[str]) -> str | None:
    if "lang" not in bucket_by:
        return None
    return bucket.split("/")[bucket_by.index("lang")]


def natural_weights(available: dict[str, int]) -> dict[str, float]:
    total = sum(available.values())
    return {b: n / total for b, n in available.items()}


def temperature_weights(available: dict[str, int], bucket_by: list[str], alpha: float) -> dict[str, float]:
    """Languages get p ∝ n_lang^alpha; buckets within a language share it in proportion to their tokens.
    Without `lang` in bucket_by, the temperature applies to the buckets themselves."""
    groups: dict[str | None, dict[str, int]] = {}
    for b, n in available.items():
        lang = _lang_of(b, bucket_by)
        groups.setdefault(lang if lang is not None else b, {})[b] = n
    mass = {g: sum(m.values()) ** alpha for g, m in groups.items()}
    z = sum(mass.values())
    return {b: mass[g] / z * n / sum(m.values()) for g, m in groups.items() for b, n in m.items()}


def unimax_weights(available: dict[str, int], target: int, caps: dict[str, float]) -> dict[str, float]:
    """UniMax (Chung et al., 2023): a uniform budget per bucket, smallest first, none over its epoch cap;
    what a small bucket cannot use goes to the larger ones."""
    budget = float(target)
    out: dict[str, float] = {}
    order = sorted(available, key=lambda b: available[b] * caps[b])
    for i, b in enumerate(order):
        share = budget / (len(order) - i)
        take = min(share, available[b] * caps[b])
        out[b] = take
        budget -= take
    return {b: t / target for b, t in out.items()}


def allocate(
    available: dict[str, int],
    *,
    target: int,
    weights: dict[str, float],
    source: str,
    max_epochs: float,
    max_epochs_by_bucket: dict[str, float],
    redistribute: bool,
) -> Allocation:
    """Tokens per bucket; raises SpecError naming the bucket and the numbers when the spec cannot be met."""
    unknown = sorted(set(weights) - set(available)) + sorted(set(max_epochs_by_bucket) - set(available))
    if unknown:
        raise SpecError(
            [
                (
                    "weights" if unknown[0] in weights else "max_epochs_by_bucket",
                    f"unknown bucket {u!r} (the pool has: {', '.join(sorted(available))})",
                )
                for u in unknown
            ]
        )
    negative = [b for b, w in weights.items() if w < 0]
    if negative:
        raise SpecError([(f"weights.{b}", f"weight {weights[b]} is negative") for b in negative])
    total_w = sum(weights.values())
    if abs(total_w - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise SpecError([("weights", f"weights ({source}) sum to {total_w:.6f}, not 1")])
    caps = {b: max_epochs_by_bucket.get(b, max_epochs) for b in available}
    requested = {b: weights.get(b, 0.0) for b in available}
    alloc = {b: requested[b] * target for b in available}
    empty = [b for b in available if alloc[b] > 0 and available[b] == 0]
    if empty:
        raise SpecError([("weights", f"bucket {b!r} has weight {requested[b]:.4f} but no documents") for b in empty])
    over = {b: alloc[b] / available[b] for b in available if alloc[b] > 0 and alloc[b] > caps[b] * available[b]}
    moved: dict[str, int] = {}
    if over and not redistribute:
        lines = [
            (
                f"weights.{b}" if source == "weights" else "target_tokens",
                f"bucket {b!r} would need {e:.2f} epochs ({alloc[b]:,.0f} tokens allocated, "
                f"{available[b]:,} available) but max_epochs is {caps[b]:g}; lower its weight or target_tokens, "
                f"raise its cap, or set redistribute: true",
            )
            for b, e in sorted(over.items())
        ]
        raise SpecError(lines)
    if over:
        # Cap, then hand the excess to the uncapped buckets in proportion to their weights; repeat
        # until nothing is over its cap (each round caps at least one more bucket).
        capped: set[str] = set()
        while True:
            over = [b for b in available if alloc[b] > caps[b] * available[b] + 1e-9]
            if not over:
                break
            excess = 0.0
            for b in over:
                excess += alloc[b] - caps[b] * available[b]
                alloc[b] = caps[b] * available[b]
                capped.add(b)
            room = {b: requested[b] for b in available if b not in capped and requested[b] > 0}
            if not room or sum(room.values()) == 0:
                capacity = sum(caps[b] * available[b] for b in available if requested[b] > 0)
                raise SpecError(
                    [
                        (
                            "target_tokens",
                            f"{target:,} tokens cannot be met within the epoch caps: the "
                            f"weighted buckets hold at most {capacity:,.0f}",
                        )
                    ]
                )
            z = sum(room.values())
            for b, w in room.items():
                alloc[b] += excess * w / z
        moved = {
            b: round(alloc[b] - requested[b] * target)
            for b in available
            if round(alloc[b] - requested[b] * target) != 0
        }
    tokens = {b: int(round(v)) for b, v in alloc.items()}
    return Allocation(
        weights={b: tokens[b] / target for b in available},
        requested=requested,
        tokens=tokens,
        caps=caps,
        redistributed=moved,
    )
