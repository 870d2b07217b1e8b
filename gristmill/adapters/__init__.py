"""Adapters to other curation tools: a datatrove step inside a gristmill pipeline
(``datatrove_in_gristmill``), and a gristmill pipeline inside datatrove
(``gristmill_in_datatrove``)."""
