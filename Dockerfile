# The image every task of the compiled Kubeflow pipeline runs in (README,
# "Kubeflow Pipelines and Vertex AI"). The project goes in as the wheel
# `pip wheel .` builds, on top of the pinned requirements, at
# kubeflow.package_root (/pipeline), where the spec reads the curated schema.
# The entrypoint is the container command of every task in the spec:
# tfx_pipeline.kubeflow_entrypoint, TFX's Kubeflow v2 executor entrypoint in
# a process that registered s3:// first. tests/kubeflow_run_test.py checks
# that this file, the compiled spec and the test harness agree.
#
#   docker build -t "$IMAGE" . && docker push "$IMAGE"
#   vrec compile --set kubeflow.image="$IMAGE" ...

FROM python:3.10-slim AS wheel
COPY . /src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels /src

FROM python:3.10-slim
# TFRS needs Keras 2; PYTHONPATH makes the installed package importable.
ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/pipeline \
    PATH=/pipeline/bin:$PATH
# The same packages the tests ran on: requirements-lock.txt pins every one.
COPY requirements.txt requirements-lock.txt /tmp/
RUN pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/requirements-lock.txt
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir --no-deps --target /pipeline /wheels/vrec-*.whl
WORKDIR /pipeline
ENTRYPOINT ["python", "-m", "tfx_pipeline.kubeflow_entrypoint"]
