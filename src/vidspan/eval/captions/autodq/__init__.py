"""AutoDQ (DREAM-1K's protocol): events extracted from captions, judged for entailment, as F1."""
