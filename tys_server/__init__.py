"""TYS, the Track Your Steps back-end: walked distance from a venue's location feeds.

The packages are the layers of DESIGN section 2, and each one's docstring says what it
may import: ``core`` (the pure domain) ← ``feeds`` (what comes in) and ``store``,
``lookup``, ``ops`` ← ``service`` (the API's use cases) ← ``web`` (thin handlers), with
``server`` wiring everything. ``config`` is a leaf any layer but ``core`` may import.
The arrows are import-linter contracts (``make lint``).
"""
