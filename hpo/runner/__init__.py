"""Running a search: the launch, its worker processes and their supervision.

Modules (imported by path; this package imports nothing itself):

- ``launch``: the one launch sequence: validate, create or resume the study, run N workers
- ``pool``: a launch's helper and worker processes started, watched and stopped
- ``supervise``: watch the workers until done: progress, replacements, stopping
- ``worker``: the body of `hpo worker`
- ``protocol``: what a worker process is told (WorkerArgs), written and read in one place
- ``processes``: worker processes as the launcher sees them
- ``devices``: which GPUs there are and which each worker sees (``--gpus``)
"""

__all__ = ["devices", "launch", "pool", "processes", "protocol", "supervise", "worker"]
