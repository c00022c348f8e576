"""A study file: what to search and how (``hpo launch --config study.yaml``).

:class:`StudySettings` holds the settings and their rules; :class:`hpo.config.studies.StudyConfig`
adds what a study does with them (its search space, rungs, the checks against data). A file
may also start from a built-in study (``extends``), which :mod:`hpo.config.studies` resolves. The
choices a study offers are defined here, once; the CLI offers the same tuples.
"""

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, Strict

from hpo.artifacts.store import check_location
from hpo.config.choices import COLOR_MODES, DATASETS, OBJECTIVES, PRUNERS, SAMPLERS
from hpo.errors import ConfigError
from hpo.models.user import model_field
from hpo.schemas.architecture import FAMILIES
from hpo.schemas.base import Checked, Flag, choice, number, problem, says, text, whole

MAX_SEED = 2**31 - 1  # seed + trial number must stay below 2**32, numpy's limit
MAX_TRIALS = 1_000_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

#: A study's name in the store: it also names files and shows in URLs.
StudyName = text(
    "letters, digits, '-', '_' and '.', starting with a letter or digit (at most 100 characters)",
    pattern=_NAME.pattern,
)
_Modules = Annotated[
    tuple[Annotated[str, Strict(), Field(min_length=1)], ...], says("a list of module names")
]
_ParamName = Annotated[str, Strict(), says("a parameter name")]


class StudySettings(Checked, BaseModel):
    """A study: the data, the model family and search space, and the search's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    other_keys: ClassVar[tuple[str, ...]] = ("extends",)

    name: StudyName
    dataset: choice(DATASETS)
    model: model_field(FAMILIES) = Field(
        description="a model family (cnn, ann) or your function: path/to/file.py:build"
    )
    search_space: _Modules = Field(
        default=(),
        description="search-space modules: built-in names or paths (optional for a build(hp) "
        "function, which defines its own)",
    )
    overrides: dict[_ParamName, Any] = Field(
        default_factory=dict,
        description="a parameter's value, list of choices, or {low, high, step, log, choices, "
        "default}",
    )
    data: text("a file path") | None = None
    #: auto: colour data trains in colour; grayscale or rgb convert every image.
    color_mode: choice(COLOR_MODES) = "auto"
    #: A folder's images resized to [height, width] (they must otherwise share one size).
    image_size: (
        Annotated[tuple[whole(8), whole(8)], says("[height, width], each 8 or more")] | None
    ) = None
    objective: choice(OBJECTIVES) = "accuracy"
    epochs: whole(1) = 10
    early_stopping: whole(0) = 3
    sampler: choice(SAMPLERS) = "tpe"
    pruner: choice(PRUNERS) = "median"
    seed: whole(0, MAX_SEED) = 0
    trials: whole(1, MAX_TRIALS) = 20
    val_fraction: number(gt=0, lt=1) = 0.2
    train_subset: whole(10) | None = None
    max_params: whole(1) | None = None
    cv: whole(2) | None = None
    #: Successive halving / Hyperband: the first rung (epochs), and the factor between rungs.
    min_epochs: whole(1) | None = None  # None: the largest r with r * factor^2 <= epochs
    reduction_factor: whole(2) = 3
    #: Confirmation: the best `confirm_top` configurations are trained `confirm_seeds` times in
    #: all (other seeds) once the search is done, and ranked by their mean. 0 turns it off.
    confirm_top: whole(0) = 0
    confirm_seeds: whole(2) = 3
    #: false: a trial is scored on validation data only where the pruner decides and at its end
    #: (scoring a large validation split after every epoch costs a quarter of the epoch).
    validate_each_epoch: Flag = True
    #: The epochs `hpo retrain` trains the exported trials on all training images, with one
    #: cosine decay (no restarts: the retrain has no rungs). None: each trial's own epochs.
    retrain_epochs: whole(1) | None = None
    #: Where the study's files go (models, plots): a directory or s3://bucket/prefix. The
    #: HPO_ARTIFACTS environment variable and --artifacts win over it, machine by machine.
    artifacts: text("a directory or s3://bucket/prefix") | None = None
    #: Record each complete trial's trained model in the artifact store (which a launch and
    #: every worker must then be given, by this setting, HPO_ARTIFACTS or --artifacts).
    save_models: Flag = False
    #: Try the search space's default configuration (its modules' recipe) as the first trial.
    try_defaults_first: Flag = True
    description: Annotated[
        str, Strict(), Field(max_length=2000), says("text of at most 2,000 characters")
    ] = ""

    @property
    def objectives(self) -> list[str]:
        return self.objective.split(",")

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def own_model(self) -> bool:
        """Whether ``model`` names a function of the user's rather than a family."""
        return ":" in self.model

    def check(self) -> None:
        if not self.own_model and not self.search_space:
            raise problem(
                f"search_space is empty: the {self.model} family needs search-space modules "
                "(`hpo spaces` lists them)"
            )
        if self.min_epochs is not None and self.min_epochs > self.epochs:
            raise problem(f"min_epochs ({self.min_epochs}) must not exceed epochs ({self.epochs})")
        if self.dataset == "digits" and self.data:
            raise problem("the digits dataset is bundled with scikit-learn and takes no data path")
        if self.image_size is not None and self.dataset != "folder":
            raise problem(
                f"image_size resizes a folder of images; the {self.dataset} dataset takes none"
            )
        if self.artifacts:
            try:
                check_location(self.artifacts)
            except ConfigError as exc:
                raise problem(str(exc)) from None
        if self.sampler == "cmaes" and self.multi_objective:
            raise problem(
                f"the cmaes sampler optimizes one objective, not {self.objective!r}: "
                "use --sampler tpe, random or qmc for a Pareto front"
            )
