"""Simulated network between meters and MDCs (DESIGN.md §2: imports numpy and simpy only).

Modules: ``cellular`` (profiles ``lte-m`` / ``nb-iot``, ``Cell``, ``SharedCell``,
``upload_with_retries``), ``radio`` (coverage classes, PRACH, power saving),
``contention`` (slotted ALOHA, shared uplink, M/D/1), ``transport`` (TCP/TLS/MQTT/HTTPS
bytes and round trips, ``SessionTable``), ``backoff`` (capped exponential backoff with
jitter), ``faults`` (outage schedules, Markov outages, degradations, reconnect storms),
``vpn`` (encapsulation, fragmentation, tunnel timeline, ``VpnGateway`` and its buffer),
``backbone`` (``Backbone``, ``Router``), ``hops`` (``HopLatencies``), ``distributions``.
"""
