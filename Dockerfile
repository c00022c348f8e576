# The hpo image: the CLI with its dependencies (TensorFlow CPU), for docker-compose.yml and
# deploy/kubernetes/ (whose pods run as this user's uid and gid, 1000).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=3

WORKDIR /opt/hpo
COPY pyproject.toml README.md ./
COPY hpo ./hpo
COPY search_spaces ./search_spaces
# /artifacts: the shared artifact store (HPO_ARTIFACTS); a new Docker volume mounted there takes
# this folder's owner, so the hpo user can write to it.
RUN pip install . && groupadd --gid 1000 hpo && useradd --create-home --uid 1000 --gid 1000 hpo \
    && install -d -o hpo -g hpo /artifacts

# Data files (SVHN .h5, mnist.npz) are mounted here; digits needs none.
WORKDIR /data
USER hpo
CMD ["hpo", "--help"]
