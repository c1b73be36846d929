"""`Limits`: the bounds on one upload (size, nesting depth, element count) that the fetch
stage enforces before and during the parse (`pipeline.fetch.parse.parse_upload`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]

#: Smallest possible element, ``<a/>``: a body of N bytes holds at most N // 4 elements.
MIN_ELEMENT_BYTES = 4


@dataclass(frozen=True)
class Limits:
    """Bounds on one upload; anything beyond is rejected with a reason.

    Attributes:
        max_size_bytes: largest accepted body, in bytes; checked before parsing. Default
            4,000,000 B: the upload format (``docs/upload-format.md``) takes ~120 B per
            reading, so a meter that buffered two weeks of 1-minute readings through an
            outage (20,160 readings, ~2.6 MB) still fits in one upload.
        max_depth: deepest accepted element nesting, counting the root element as depth 1
            (a Green Button upload is 7 deep: feed/entry/content/IntervalBlock/
            IntervalReading/timePeriod/start). Enforced in two layers: libxml2 itself aborts
            the parse of anything deeper than 256 levels (its limit without ``huge_tree``),
            so a 10,000-deep document costs almost nothing; after the parse a compiled
            XPath ``boolean(/*/*/.../*)`` with ``max_depth + 1`` steps looks for any element
            below ``max_depth`` (linear in the number of elements), or, for an upload the
            process stage's scanner has read in its bytes, its count of the nesting is
            compared (`pipeline.fetch.parse.parse_upload`).
        max_elements: most elements accepted in one document. Not counted at all when the
            body is too small to hold more (an element takes at least 4 bytes); otherwise
            its start-tag ``<`` bytes bound it, and only if that bound is over the limit are
            the elements counted exactly, during the parse, which stops as soon as the
            count passes the limit (memory and time bounded by the limit, not the body).
    """

    max_size_bytes: int = 4_000_000
    max_depth: int = 64
    max_elements: int = 200_000

    def __post_init__(self) -> None:
        for name in ("max_size_bytes", "max_depth", "max_elements"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")

    def may_hold_too_many_elements(self, size_bytes: int) -> bool:
        """Whether a body of ``size_bytes`` is large enough to hold more than
        `max_elements` elements (each takes at least `MIN_ELEMENT_BYTES`)."""
        return size_bytes > MIN_ELEMENT_BYTES * self.max_elements

    def size_always_admitted(self, size_bytes: int) -> bool:
        """Whether a body of ``size_bytes`` can break neither the size nor the element limit
        whatever it holds: then only its content and its depth can be rejected."""
        return size_bytes <= self.max_size_bytes and not self.may_hold_too_many_elements(
            size_bytes
        )
