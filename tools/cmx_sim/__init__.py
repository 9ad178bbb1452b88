"""CMX traffic simulator: a fake CMX location API, a venue of walkers, and a load generator.

Run ``python -m tools.cmx_sim --help`` from the repository root.
"""
