"""The test kit of every test suite and of ``bench/``: a workspace package of its own, outside the
product (no service depends on it, and no image contains it).

- :mod:`te_testing.fixtures`: the pytest plugin the root ``conftest.py`` loads (RabbitMQ,
  PostgreSQL, a namespace per module or test, tokens, a webhook receiver, a system of one's own).
- :mod:`te_testing.infra`: fresh databases, RabbitMQ namespaces, settings and in-process apps.
- :mod:`te_testing.processes`: a service as its own process (``python -m <module>``).
- :mod:`te_testing.system`: the whole system wired as ``make run`` wires it, Zoom connected
  through the simulator, and what tests build in it through the APIs: days
  (:func:`~te_testing.system.create_day` and the day bodies) and an event with its sessions and
  days, active and known to registration (:func:`~te_testing.system.active_event`).
- :mod:`te_testing.messages`: contract messages as the services publish them; publishing them,
  handling them, reading an outbox.
- :mod:`te_testing.polling`: the one :func:`~te_testing.polling.eventually`.
- :mod:`te_testing.api`: ``auth`` headers, ``ok`` (a status asserted, the JSON returned), the
  README endpoint table check.
- :mod:`te_testing.clock`: instants by meaning (days from now, minutes after a fixed instant,
  a day of January 2030) and their spellings (ISO 8601, Zoom's).
- :mod:`te_testing.servers`, :mod:`te_testing.webhooks`, :mod:`te_testing.tables`,
  :mod:`te_testing.xlsx`: an ASGI app served in the test's loop, a webhook receiver, the outbox
  and inbox tables alone, hand-made workbooks.
- :mod:`te_testing.faults`: faults over the real processes (the fault tests, the soak): a client
  that retries through outages, raw SQL on a service database, the dead-letter count, the
  machine's RabbitMQ and PostgreSQL stopped, restarted and waited for.
"""
