"""Quiver's ReAct host and the `quiver` command line."""
