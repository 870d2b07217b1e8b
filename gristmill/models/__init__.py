"""Models shipped with gristmill (package data, each with the config and recipe that made it),
and the fastText runtime that reads them (``fasttext_model``)."""
