"""Built-in stages: filters (language, heuristics, scores, age) and taggers (language, quality,
toxicity, domain, tokens, topic, MeCo); every module here registers its own."""
