"""FineInstructions (Jiang et al.): turn pretraining documents into instruction-answer pairs.

Template bank (queries made generic, each with the description of documents that can answer
it), matching of documents to templates by embedding, instantiation of a template from a
document with answers excerpted from it, judging, and token-budgeted packing. Every module
here that defines a stage registers it.
"""
