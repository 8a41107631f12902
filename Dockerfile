# Image for the Kubeflow Pipelines v2 run (`python -m tfx_pipeline compile`
# defaults to kubeflow.package_root=/pipeline). Build and push it to your
# registry, then compile with --set kubeflow.image=<registry>/<image>:<tag>.
FROM python:3.10-slim

ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONUNBUFFERED=1

WORKDIR /pipeline
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN pip install --no-cache-dir --no-deps -e .
