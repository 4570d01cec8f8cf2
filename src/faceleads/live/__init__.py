"""Live watch-list deployments: a separate, explicitly authorised, time-boxed mode (docs/live.md).

- :mod:`.models` — watch lists, deployments (with their authorisation), cameras, frozen entries, alerts.
- :mod:`.watchlists`, :mod:`.deployments`, :mod:`.alerts`, :mod:`.reports` — the services (take an ``Actor``).
- :mod:`.tracking`, :mod:`.matching`, :mod:`.sources`, :mod:`.pipeline` — the in-memory pipeline.
- :mod:`.worker`, :mod:`.runner` — one decoding/recognition process per camera.
- :mod:`.evaluation`, :mod:`.scenes` — ``faceleads evaluate live`` and test videos composed from real photos.
"""
