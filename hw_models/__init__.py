"""MDC hardware models (DESIGN.md §2): numpy and simpy only, no other project package.

- :mod:`hw_models.catalog`: server SKUs and accelerators from ``catalog.toml``.
- :mod:`hw_models.server`: ``ServerPool`` (cores, speed, RAM push-back, disk, power,
  work lost when a server goes down).
- :mod:`hw_models.power`: power models, PUE, exact energy integrals.
- :mod:`hw_models.failures`: MTBF/MTTR processes, MDC power loss, maintenance windows.
- :mod:`hw_models.power_supply`: renewables, battery, grid outages, brown-out controller.
- :mod:`hw_models.accelerator`: a GPU running the analytics stage in batches.
- :mod:`hw_models.queueing` and :mod:`hw_models.little`: queueing theory references and
  Little's law measured on a run.
"""
