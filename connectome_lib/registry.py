"""One place for the facts about model types, evaluation tasks and their measures.

Every other module reads these declarations instead of keeping its own table: the evaluation
runner (which tasks exist, which write per-item tables, which options shape a task's rows),
the settings fingerprints, the verdicts (which measures are tested, on which per-item column,
in which direction), the plots (titles, axis labels, chance lines), the takeaways and the book.
Adding a benchmark means adding one :class:`Task` here and its evaluation module under
:mod:`connectome_lib.evals`; renaming a metric means editing one :class:`Measure`.

This module imports nothing heavy (no torch, no pandas) so that any module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass


# ------------------------------------------------------------------------------ model types
@dataclass(frozen=True)
class ModelType:
    """One kind of inner-loop model: the paper's three, and our RowMatchedRandom control."""

    init: str  # the ``develop.inits`` key and run-folder prefix, e.g. "connectome"
    label: str  # the paper's name, e.g. "Connectome"
    short: str  # a two-line tick label that fits three to a panel
    description: str


#: in the order the inner loop trains them (``develop.inits`` default order)
MODEL_TYPES: tuple[ModelType, ...] = (
    ModelType("connectome", "Connectome", "Connectome",
              "inherits the evolved connectome: its mask and signs, every survivor at init_value"),
    ModelType("random", "RandomConnectome", "Random\nConnectome",
              "a random mask of the connectome's density per tensor, random signs, init_value"),
    ModelType("rowmatched", "RowMatchedRandom", "RowMatched\nRandom",
              "a random mask with the connectome's kept count in every row and column of every matrix "
              "(so its token-frequency prior), random positions and signs, init_value (ours, not the paper's)"),
    ModelType("dense", "NoConnectome", "No\nConnectome",
              "the same architecture, dense, standard initialisation"),
)
MODEL_TYPES_BY_INIT: dict[str, ModelType] = {m.init: m for m in MODEL_TYPES}
MODEL_TYPES_BY_LABEL: dict[str, ModelType] = {m.label: m for m in MODEL_TYPES}
#: ``develop.inits`` keys
INITS: tuple[str, ...] = tuple(m.init for m in MODEL_TYPES)
#: init key -> the paper's label
INIT_LABELS: dict[str, str] = {m.init: m.label for m in MODEL_TYPES}
#: the paper's labels
LABELS: tuple[str, ...] = tuple(m.label for m in MODEL_TYPES)
#: the model types the paper reports (ours adds RowMatchedRandom)
PAPER_LABELS: tuple[str, ...] = tuple(m.label for m in MODEL_TYPES if m.init != "rowmatched")
#: the paper's claimed ordering, best first
PAPER_ORDER: tuple[str, ...] = ("Connectome", "NoConnectome", "RandomConnectome")
#: the model type whose advantage the paper claims, and the controls it is compared with (the
#: paper's two, then ours, which separates the frequency prior from the wiring)
CONNECTOME = "Connectome"
CONTROLS: tuple[str, ...] = ("NoConnectome", "RandomConnectome", "RowMatchedRandom")
#: the inits whose models inherit (or are matched to) a lineage's connectome
CONNECTOME_INITS: tuple[str, ...] = ("connectome", "random", "rowmatched")


def label_of(init: str) -> str:
    """The paper's label of an init key (``"dense"`` -> ``"NoConnectome"``)."""
    try:
        return INIT_LABELS[init]
    except KeyError:
        raise KeyError(f"unknown model type {init!r}; known: {', '.join(INITS)}") from None


# ------------------------------------------------------------------------------ measures
@dataclass(frozen=True)
class Measure:
    """One number an evaluation task reports, with what it takes to read and test it."""

    task: str  # the evaluation task that reports it
    metric: str  # its ``metric`` in the results table, e.g. "acc_norm"
    title: str  # in words, e.g. "HellaSwag (normalised)"
    axis: str  # an axis label with the unit
    higher_is_better: bool = True
    chance: float | None = None  # the chance level, where one exists
    #: the column of the task's per-item table that carries this measure's outcome per item
    #: (None: no per-item outcome, so no paired test)
    item_column: str | None = None
    #: for correlations: the per-item column the outcome is correlated with
    target: str | None = None
    #: the per-item table's columns that identify an item
    item: tuple[str, ...] = ("item",)
    #: the per-item table's column that groups dependent items, which are resampled together
    #: (an MMLU subject, a BLiMP paradigm, a Natural Stories story); ``"book"``: the validation
    #: book of a window, derived from the corpus (:func:`connectome_lib.effects.profile_window_books`);
    #: None: the items are independent
    cluster: str | None = None
    #: the measure's name in verdict tables and claims (None: not tested for a claim)
    claim: str | None = None
    #: shown in the command line's summary of an evaluation
    headline: bool = False
    #: a measure derived from another metric of the same task over the inner loop: the mean of
    #: that metric over every evaluated checkpoint of a model (the paper's framing of reading
    #: times as a trajectory); never a row of the results table itself
    mean_over_training_of: str | None = None
    #: the baselines a model must beat for the measure to discriminate (``baselines`` metrics,
    #: e.g. the untrained model's r and the word length's); none: chance, where there is one
    baselines: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.task, self.metric)

    @property
    def has_items(self) -> bool:
        return self.item_column is not None


@dataclass(frozen=True)
class Task:
    """An evaluation task: its measures, whether it writes a per-item table, whether the paper
    reports it, and the evaluation options (:class:`~connectome_lib.evals.config.EvalConfig`
    fields) that shape its rows (device, batch size and progress bars never do)."""

    name: str
    title: str
    measures: tuple[Measure, ...]
    has_table: bool = False
    paper: bool = True
    options: tuple[str, ...] = ()
    #: which checkpoints of an inner model the pipeline evaluates: ``final`` (the final model)
    #: or ``all`` (every checkpoint, for a curve over the inner loop)
    checkpoints: str = "final"


#: the two validation losses of the book, one name each (reconciled on the Findings page by
#: :func:`connectome_lib.findings.loss_definitions_markdown`): the trainer's, at every
#: evaluation of the learning curves, over the first ``val_batches x batch_size x grad_accum``
#: windows of the validation corpus; and the ``perplexity`` task's on the final models, over
#: every token of the validation corpus -- the one the verdicts test
LEARNING_CURVE_LOSS = "learning-curve loss"
FINAL_LOSS = "final validation loss"


def learning_curve_windows(train) -> int:
    """How many validation windows the learning-curve loss averages (a ``TrainConfig``)."""
    return int(train.val_batches) * int(train.batch_size) * int(train.grad_accum)


_ACC = "accuracy (fraction correct)"
_BRAIN_R = "brain predictivity (Pearson r)"
_BRAIN = ("brain_limit", "brain_roi", "brain_folds", "brain_alpha_min_exp", "brain_alpha_max_exp",
          "brain_n_alphas", "seed")

#: every task the package knows, in the order the runner evaluates them
TASKS: tuple[Task, ...] = (
    Task("perplexity", "Validation loss", (
        Measure("perplexity", "loss", "Validation loss", "loss (nats/token)", higher_is_better=False,
                item_column="loss", claim="validation loss", headline=True, cluster="book"),
        Measure("perplexity", "ppl", "Validation perplexity", "perplexity", higher_is_better=False),
    ), has_table=True, options=("limit", "perplexity_context")),
    Task("hellaswag", "HellaSwag", (
        Measure("hellaswag", "acc", "HellaSwag", _ACC, chance=0.25, item_column="correct_acc", headline=True),
        Measure("hellaswag", "acc_norm", "HellaSwag (normalised)", _ACC, chance=0.25, headline=True),
        Measure("hellaswag", "acc_norm_chars", "HellaSwag (per-character norm.)", _ACC, chance=0.25,
                item_column="correct_acc_norm_chars", claim="HellaSwag acc_norm"),
        Measure("hellaswag", "acc_norm_tokens", "HellaSwag (per-token norm.)", _ACC, chance=0.25,
                item_column="correct_acc_norm_tokens"),
    ), has_table=True, options=("limit", "hellaswag_norm", "seed")),
    Task("mmlu", "MMLU", (
        Measure("mmlu", "acc", "MMLU", _ACC, chance=0.25, item_column="correct_acc", claim="MMLU acc",
                headline=True, cluster="subject"),
        Measure("mmlu", "acc_macro", "MMLU (mean over subjects)", _ACC, chance=0.25),
    ), has_table=True, options=("limit", "mmlu_prompt", "seed")),
    Task("blimp", "BLiMP", (
        Measure("blimp", "acc", "BLiMP", "accuracy (fraction of pairs)", chance=0.5, item_column="correct_acc",
                claim="BLiMP acc", headline=True, cluster="uid"),
    ), has_table=True, paper=False, options=("limit", "blimp_limit", "blimp_leading_space")),
    Task("futrell2018", "Reading times (Futrell2018)", (
        Measure("futrell2018", "r", "Reading times (Futrell2018)", "surprisal vs. reading time (Pearson r)",
                item_column="surprisal_bits", target="rt", item=("item", "zone"), claim="reading times r",
                headline=True, cluster="item", baselines=("untrained/futrell2018/r", "rt/r_n_tokens", "rt/r_n_chars")),
        Measure("futrell2018", "r_brainscore", "Reading times, Brain-Score variant", "Pearson r"),
        Measure("futrell2018", "r_partial_length", "Reading times, length partialled", "partial Pearson r",
                claim="reading times r, length partialled",
                baselines=("untrained/futrell2018/r_partial_length",)),
        Measure("futrell2018", "r_mean_over_training", "Reading times over the inner loop",
                "mean Pearson r over checkpoints", claim="reading times r over training",
                mean_over_training_of="r", baselines=("untrained/futrell2018/r", "rt/r_n_tokens", "rt/r_n_chars")),
    ), has_table=True, options=("futrell_limit", "futrell_stride"), checkpoints="all"),
    Task("tuckute2024", "Brain (Tuckute2024)", (
        Measure("tuckute2024", "r_best", "Brain predictivity, best layer", _BRAIN_R, headline=True),
        Measure("tuckute2024", "best_layer", "Best layer for the brain data", "layer"),
    ), options=_BRAIN),
    Task("language_units", "Language-selective units", (
        Measure("language_units", "r_top1pct", "Top 1 % language units", _BRAIN_R, headline=True),
        Measure("language_units", "r_top10pct", "Top 10 % language units", _BRAIN_R, headline=True),
        Measure("language_units", "r_all_units", "All units", _BRAIN_R),
    ), has_table=True, options=_BRAIN + ("language_units_fractions", "localizer_n_sentences")),
    Task("baselines", "Baselines (untrained model, word length, frequency)", (), paper=False,
         options=_BRAIN + ("futrell_limit", "futrell_stride", "frequency_corpora", "baseline_tasks")),
)
TASKS_BY_NAME: dict[str, Task] = {t.name: t for t in TASKS}
TASK_NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
#: the tasks the paper reports (its defaults; ``blimp`` and ``baselines`` are ours)
PAPER_TASKS: tuple[str, ...] = tuple(t.name for t in TASKS if t.paper)
#: the tasks whose rows come with a per-item table: a row without its table is incomplete
TABLE_TASKS: frozenset[str] = frozenset(t.name for t in TASKS if t.has_table)
MEASURES: tuple[Measure, ...] = tuple(m for t in TASKS for m in t.measures)
MEASURES_BY_KEY: dict[tuple[str, str], Measure] = {m.key: m for m in MEASURES}
#: the measures the verdicts test, in the order they are shown
CLAIM_MEASURES: tuple[Measure, ...] = tuple(m for m in MEASURES if m.claim is not None)
#: the metrics the command line prints after an evaluation
HEADLINE_METRICS: frozenset[str] = frozenset(m.metric for m in MEASURES if m.headline)


def task(name: str) -> Task:
    """The :class:`Task` called ``name`` (``KeyError`` naming the known tasks)."""
    try:
        return TASKS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASK_NAMES)}") from None


def measure(task_name: str, metric: str) -> Measure | None:
    """The declared :class:`Measure` of ``(task, metric)``, or ``None`` (per-layer and
    per-subject metrics such as ``r_layer3`` are not declared one by one)."""
    return MEASURES_BY_KEY.get((task_name, metric))


def measure_title(task_name: str, metric: str) -> str:
    """A measure's name in words, e.g. ``("tuckute2024", "r_best")`` -> "Brain predictivity, best layer"."""
    m = measure(task_name, metric)
    return m.title if m else f"{task_name}: {metric}".replace("_", " ")


def measure_axis(task_name: str, metric: str) -> str:
    """A measure's axis label with its unit, e.g. "brain predictivity (Pearson r)"."""
    m = measure(task_name, metric)
    return m.axis if m else metric.replace("_", " ")


def chance_level(task_name: str, metric: str) -> float | None:
    """The chance level of ``(task, metric)``, or ``None`` where there is none."""
    m = measure(task_name, metric)
    return m.chance if m else None


def higher_is_better(task_name: str, metric: str) -> bool:
    """Whether a larger value of ``(task, metric)`` is better (losses: no)."""
    m = measure(task_name, metric)
    if m is not None:
        return m.higher_is_better
    return not metric.startswith(("loss", "ppl"))


def claim_measure(claim: str) -> Measure:
    """The tested measure whose claim name is ``claim`` (e.g. "validation loss")."""
    for m in CLAIM_MEASURES:
        if m.claim == claim:
            return m
    raise KeyError(f"no tested measure is called {claim!r}; known: {', '.join(m.claim for m in CLAIM_MEASURES)}")


# ------------------------------------------------------------------------------ ablation variants
#: the components a connectome is split into (see :mod:`connectome_lib.params`)
COMPONENTS: tuple[str, ...] = ("wte", "blocks", "lm_head")


@dataclass(frozen=True)
class AblationVariant:
    """One ablation: a stable ``name`` (used in folder names and tables), the components whose
    mask and signs come from the random control, and a label for tables and plots."""

    name: str
    take_random: frozenset[str]
    label: str

    @property
    def kept(self) -> tuple[str, ...]:
        """The components kept from the evolved connectome."""
        return tuple(c for c in COMPONENTS if c not in self.take_random)


#: the six variants: one component replaced by the random control's, and all but one replaced
ABLATIONS: tuple[AblationVariant, ...] = (
    *(AblationVariant(f"random_{c}", frozenset({c}), f"Connectome with random {c}") for c in COMPONENTS),
    *(AblationVariant(f"only_{c}", frozenset(set(COMPONENTS) - {c}), f"Random with connectome {c}")
      for c in COMPONENTS),
)
ABLATIONS_BY_NAME: dict[str, AblationVariant] = {v.name: v for v in ABLATIONS}
