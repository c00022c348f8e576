"""A third search backend, written against the backend contract alone (test_backends.py runs it).

It samples every active parameter uniformly at random, trains through the shared
trainer and records each trial itself: no Optuna sampler, no KerasTuner. The
launch, the worker processes, the progress, the failure streak and every
command that reads the study come from hpo.
"""

from __future__ import annotations

import math
import random
from typing import Any

from hpo.backends.base import Backend, WorkerContext, record_trial
from hpo.space import FloatParam
from hpo.study.records import counts, distribution, finished


class ToyBackend(Backend):
    name = "toy"
    heartbeats = False  # trials are stored when they end

    def __init__(self, seed: int = 0):
        self.seed = seed

    def options(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def describe(self, config) -> str:
        return f"toy random search (seed {self.seed})"

    def run_worker(self, ctx: WorkerContext) -> None:
        rng = random.Random(self.seed * 7919 + ctx.stream)
        space = ctx.config.checked_space()
        while not ctx.should_stop() and finished(counts(ctx.study)) < ctx.target:
            params: dict[str, Any] = {}
            for param in space:
                if not param.active(params):
                    continue
                values = param.values()
                if values is not None:
                    params[param.name] = rng.choice(values)
                elif isinstance(param, FloatParam) and param.log:
                    low, high = math.log(param.low), math.log(param.high)
                    params[param.name] = math.exp(rng.uniform(low, high))
                else:
                    params[param.name] = rng.uniform(param.low, param.high)
            outcome = ctx.train(params, ctx.config.seed + ctx.ran)
            record_trial(ctx, outcome, lambda n: distribution(space[n]), {"backend": self.name})
            if outcome.interrupted:
                raise KeyboardInterrupt
            ctx.ended(outcome.state == "FAIL", outcome.error or "")
