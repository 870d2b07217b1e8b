"""ProX refinement (Zhou et al., 2024), model-independent core.

Prompt builders, the program parsers and executors (``compat`` reproduces the released
code, ``strict`` accepts only clean whitelisted calls), and a rule-based programmer that
writes the same programs without a model. Inference stages build on this API. The behaviour
reproduced is that of the released GAIR-NLP/ProX inference code.
"""

from gristmill.refiners.prox.executor import (
    DEFAULT_THRESHOLDS,
    Branch,
    LineSpan,
    Mode,
    RefineResult,
    Span,
    Thresholds,
    apply_chunk_programs,
    execute_program,
    merge_chunk_programs,
    whole_document,
)
from gristmill.refiners.prox.program import (
    DocDecision,
    NoOp,
    Normalize,
    ParsedLine,
    RemoveAll,
    RemoveLines,
    is_safe_literal,
    parse_compat_line,
    parse_strict_line,
)
from gristmill.refiners.prox.prompts import (
    CHUNK_MAX_NEW_TOKENS,
    CHUNK_TOKEN_BUDGET,
    CONTEXT_LENGTH,
    DOC_MAX_NEW_TOKENS,
    DOC_MAX_PROMPT_TOKENS,
    SYSTEM_PROMPT,
    Chunk,
    DocPrompt,
    DocPromptBuilder,
    build_chunk_prompts,
    build_chunk_prompts_batch,
    build_doc_prompt,
    build_doc_prompts,
    chunk_prompt,
    llama2_prompt,
    number_line,
    pack_lines,
)
from gristmill.refiners.prox.rule_programmer import RuleEdit, RuleProgrammer, RuleProgrammerConfig
from gristmill.refiners.prox.tokens import TokenEncoder, as_encoder

__all__ = [
    "CHUNK_MAX_NEW_TOKENS",
    "CHUNK_TOKEN_BUDGET",
    "CONTEXT_LENGTH",
    "DEFAULT_THRESHOLDS",
    "DOC_MAX_NEW_TOKENS",
    "DOC_MAX_PROMPT_TOKENS",
    "SYSTEM_PROMPT",
    "Branch",
    "Chunk",
    "DocDecision",
    "DocPrompt",
    "DocPromptBuilder",
    "LineSpan",
    "Mode",
    "NoOp",
    "Normalize",
    "ParsedLine",
    "RefineResult",
    "RemoveAll",
    "RemoveLines",
    "RuleEdit",
    "RuleProgrammer",
    "RuleProgrammerConfig",
    "Span",
    "Thresholds",
    "TokenEncoder",
    "apply_chunk_programs",
    "as_encoder",
    "build_chunk_prompts",
    "build_chunk_prompts_batch",
    "build_doc_prompt",
    "build_doc_prompts",
    "chunk_prompt",
    "execute_program",
    "is_safe_literal",
    "llama2_prompt",
    "merge_chunk_programs",
    "number_line",
    "pack_lines",
    "parse_compat_line",
    "parse_strict_line",
    "whole_document",
]
