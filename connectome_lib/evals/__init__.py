"""Evaluations of the Model Connectomes companion, for any transformers causal LM.

Tasks (names used in :class:`EvalConfig.tasks`):

==================  ================================================================
``perplexity``      validation loss / perplexity on a token array
``hellaswag``       HellaSwag validation, ``acc`` / ``acc_norm`` (chars or tokens)
``mmlu``            MMLU test, zero-shot, harness or paper prompt, per subject
``blimp``           BLiMP, accuracy per paradigm and overall
``futrell2018``     word surprisal vs. Natural Stories reading times
``tuckute2024``     layer-wise ridge predictivity of the language network's fMRI response
``language_units``  brain predictivity of language-selective units (AlKhamissi et al. 2025)
``baselines``       untrained model, word length/frequency, sentence length
==================  ================================================================

Entry points: :func:`connectome_lib.evals.runner.evaluate`, :func:`~.runner.evaluate_run`,
:func:`~.runner.evaluate_model`, and the ``evaluate`` sub-command of :mod:`.cli`.
"""

from .config import ALL_TASKS, PAPER_TASKS, EvalConfig, apply_overrides
from .results import Metric, TaskResult
from .runner import evaluate, evaluate_model, evaluate_run

__all__ = [
    "ALL_TASKS",
    "PAPER_TASKS",
    "EvalConfig",
    "apply_overrides",
    "Metric",
    "TaskResult",
    "evaluate",
    "evaluate_model",
    "evaluate_run",
]
