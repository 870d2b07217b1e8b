"""Deduplication across the whole run: ``exact_dedup`` (text, URL or any column),
``minhash_dedup`` (near duplicates) and ``paragraph_dedup`` (repeated paragraphs or lines),
each a stage with a corpus-wide phase (see ``gristmill.core.phase``)."""
