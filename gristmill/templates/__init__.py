"""Templates shipped with gristmill (package data), such as the topic tagger's default topic list.

They live inside the package, not at the repository root, so that a wheel or a non-editable
install carries them: stages load them with ``importlib.resources``, never by a path relative
to the source tree.
"""
