"""Knowledge bases on Milvus: ingest (parse → chunk → embed → upsert), dense / BM25 / hybrid search.

Library modules: :mod:`store` (collections, one per knowledge base), :mod:`filters` (the safe filter
language), :mod:`ingest`, :mod:`search` (search, fusion, rerank, query rewriting, prompt context);
:mod:`server` is the MCP façade.
"""
