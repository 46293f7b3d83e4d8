"""The benchmark harness: scenarios that drive every tool through its adapter, the
figures they measure (defined once, in ``figures``), statistics and ``results.json``."""
