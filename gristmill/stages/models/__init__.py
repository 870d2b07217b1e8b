"""Model wrappers that stages share (fastText); no stages are registered here."""
