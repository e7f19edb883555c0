"""Knowledge bases on Milvus: ingest (parse → chunk → embed → upsert), dense / BM25 / hybrid search.

:mod:`.api` holds the public functions, one per tool (:mod:`.server` declares them). Library
modules: :mod:`.store` (collections, one per knowledge base; every Milvus expression and the
document and chunk ids), :mod:`.filters` (the safe filter language), :mod:`.manage`,
:mod:`.ingest`, :mod:`.search` (modes, fusion through the rerank library's, rerank),
:mod:`.rewrite` (multi-query, HyDE), :mod:`.context` (the prompt block), :mod:`.browse`
(stored chunks and documents), :mod:`.results` (the result schemas).
"""
