"""Operator tools for TYS: the CMX simulator (``python -m tools.cmx_sim``) and scripts."""
