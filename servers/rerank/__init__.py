"""Rerank: cross-encoder, LLM, embedding and late-interaction rerankers, score fusion, business boosts."""
