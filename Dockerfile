# The hpo image: the CLI with its dependencies (TensorFlow CPU), for docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=3

WORKDIR /opt/hpo
COPY pyproject.toml README.md ./
COPY hpo ./hpo
COPY search_spaces ./search_spaces
RUN pip install . && useradd --create-home hpo

# Data files (SVHN .h5, mnist.npz) are mounted here; digits needs none.
WORKDIR /data
USER hpo
CMD ["hpo", "--help"]
