"""XML namespaces of a Green Button document: the Atom envelope and the ESPI resources.

Elements are matched by namespace URI and local name everywhere in the pipeline, never by
prefix: default-namespace (``<IntervalBlock xmlns="http://naesb.org/espi">``) and prefixed
(``<espi:IntervalBlock xmlns:espi=...>``) documents read the same.
"""

from __future__ import annotations

__all__ = ["ATOM", "ATOM_NS", "ESPI", "ESPI_NS", "NAMESPACES"]

#: Atom (RFC 4287) namespace: the envelope of every Green Button feed.
ATOM_NS = "http://www.w3.org/2005/Atom"
#: NAESB ESPI (REQ.21, ``espiDerived.xsd``) namespace of the energy usage resources inside
#: ``atom:content``.
ESPI_NS = "http://naesb.org/espi"
#: Clark-notation prefixes of element tags (``ATOM + "feed"`` is lxml's ``{Atom}feed``).
ATOM = f"{{{ATOM_NS}}}"
ESPI = f"{{{ESPI_NS}}}"
#: Prefix map of the pipeline's XPath expressions (``atom:entry``, ``espi:IntervalBlock``).
NAMESPACES: dict[str, str] = {"atom": ATOM_NS, "espi": ESPI_NS}
