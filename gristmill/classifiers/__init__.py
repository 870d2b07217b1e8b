"""Training and evaluating the text classifiers that the scorer stages load."""
