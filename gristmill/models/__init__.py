"""Models shipped with gristmill (package data), each with the config and recipe that made it."""
