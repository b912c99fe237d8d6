"""How models run: :class:`~.graph.GraphModel` and what it runs on each backend.

- :mod:`.graph`: ``GraphModel``, the functional model class every builder returns.
- :mod:`.torch`: the torch backend's runner for it (the plan) and torch memory layouts.
- :mod:`.allocator`: glibc ``malloc`` settings that keep freed memory for CPU training.
"""
