"""The agent's own model: the tool-calling dataset for the shipped SmolLM2-135M and its recipe.

``python -m agent_model.build_dataset --bfcl ../shared/data/bfcl --out DIR --seed 0`` builds
conversations in the host's own ``smol`` tool-call format from BFCL, Quiver's own tools and
multi-turn traces with real tool responses. See ``agent_model/README.md``.
"""
