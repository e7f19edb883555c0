"""LoRA adapters shipped with Quiver (``models.adapter``): ``agent-smollm2/`` is the tool-calling
adapter for the shipped SmolLM2-135M, trained by ``make agent-model`` (``agent_model/``)."""
