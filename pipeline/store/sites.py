"""The site registry: what the pipeline knows of each site (`SiteMeta`, from its
commissioning record) and its repository (table ``sites`` of `pipeline.store.schema`,
which survives restarts).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.store.database import Database
from pipeline.store.schema import SITE_COLUMNS

__all__ = ["PVWATTS_DERATE", "SITE_KINDS", "SiteMeta", "SiteRepository"]

#: Kinds of site: each has its own detectors (`pipeline.analyze.faults.SITE_DETECTORS`).
SITE_KINDS = ("pv", "wind", "load")
#: PVWatts v5 defaults (Dobos 2014, NREL/TP-6A20-62641): 14.08 % system losses and a
#: nominal inverter efficiency of 96 %: AC = DC nameplate x POA/1000 x 0.8592 x 0.96.
PVWATTS_DERATE = (1.0 - 0.1408) * 0.96


@dataclass(frozen=True)
class SiteMeta:
    """What the pipeline knows of one site (from its commissioning record).

    Attributes:
        site_id: the id used in detections and messages (usually the meter id).
        kind: one of `SITE_KINDS`, ``"pv"``, ``"wind"`` or ``"load"``: picks the detectors
            (`pipeline.analyze.faults.SITE_DETECTORS`).
        capacity_w: PV: DC nameplate at STC (PVWatts ``pdc0``), W; wind: rated power, W;
            load: the service's peak demand, W.
        latitude_deg, longitude_deg: site location, degrees north and east.
        altitude_m: site altitude above sea level, m.
        tilt_deg: PV surface tilt from horizontal, degrees.
        azimuth_deg: PV surface azimuth, degrees east of north (180 = south facing).
        ac_nameplate_w: PV inverter AC limit, W (None: no clipping, i.e. ``capacity_w``).
        linke_turbidity: Linke turbidity of the Ineichen-Perez clear sky (dimensionless;
            default 3.0, a typical rural mid-latitude value, Remund et al. 2003).
        albedo: ground reflectance (default 0.25, pvlib's default).
        derate: AC output per unit of DC nameplate x POA/1000 (default `PVWATTS_DERATE`).
    """

    site_id: str
    kind: str
    capacity_w: float
    latitude_deg: float = 0.0
    longitude_deg: float = 0.0
    altitude_m: float = 0.0
    tilt_deg: float = 0.0
    azimuth_deg: float = 180.0
    ac_nameplate_w: float | None = None
    linke_turbidity: float = 3.0
    albedo: float = 0.25
    derate: float = PVWATTS_DERATE

    def __post_init__(self) -> None:
        if self.kind not in SITE_KINDS:
            raise ValueError(f"kind must be one of {sorted(SITE_KINDS)}, got {self.kind!r}")
        if not self.capacity_w > 0:
            raise ValueError(f"capacity_w must be > 0, got {self.capacity_w!r}")
        if not -90 <= self.latitude_deg <= 90 or not -180 <= self.longitude_deg <= 360:
            raise ValueError("latitude_deg must be in [-90, 90] and longitude_deg in [-180, 360]")
        if self.ac_nameplate_w is not None and not self.ac_nameplate_w > 0:
            raise ValueError(f"ac_nameplate_w must be > 0, got {self.ac_nameplate_w!r}")

    @property
    def nameplate_w(self) -> float:
        """The output ceiling, W: the inverter AC limit for PV, the rated power otherwise."""
        if self.kind == "pv" and self.ac_nameplate_w is not None:
            return float(self.ac_nameplate_w)
        return float(self.capacity_w)


_UPSERT_SITE = (
    f"INSERT INTO sites ({', '.join(SITE_COLUMNS)}) VALUES ({', '.join('?' * len(SITE_COLUMNS))}) "
    "ON CONFLICT (site_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SITE_COLUMNS[1:])
)
_SELECT_SITES = f"SELECT {', '.join(SITE_COLUMNS)} FROM sites ORDER BY site_id"


class SiteRepository:
    """The registered sites of a store. Every write is one unit of work of `database`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn = database.connection

    def put(self, site: SiteMeta) -> None:
        """Register or replace a site's metadata, as one unit of work."""
        values = tuple(getattr(site, c) for c in SITE_COLUMNS)
        with self._db.unit():
            self._conn.execute(_UPSERT_SITE, values)

    def all(self) -> dict[str, SiteMeta]:
        """The registered sites, by site id."""
        return {
            str(r[0]): SiteMeta(**dict(zip(SITE_COLUMNS, r, strict=True)))
            for r in self._conn.execute(_SELECT_SITES)
        }
