"""Evaluation: retrieval, RAG, text2sql, language models, judges, tool calls; runs and reports."""
