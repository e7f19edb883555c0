"""Rerank: cross-encoder, LLM, embedding and late-interaction rerankers, score fusion, business boosts.

:mod:`.api` holds the public functions, one per tool (``rerank``, ``fuse``, ``list_rerankers``);
:mod:`.server` declares them. Library modules: :mod:`.rerankers`, :mod:`.fusion`, :mod:`.boosts`,
:mod:`.inputs` (validation of callers' documents and boosts), :mod:`.schemas`.
"""
