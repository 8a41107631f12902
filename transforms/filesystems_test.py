"""transforms.filesystems: tf.io.gfile reaches s3:// in a process of the project,
and Beam's S3 wrapper shares its clients."""

import subprocess
import sys
import textwrap

from tests.object_store import object_store, object_store_server  # noqa: F401  pylint: disable=unused-import
from tests import prerequisites
from transforms import filesystems


def test_the_plugin_variables_follow_the_aws_endpoint():
  environ = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}
  filesystems.configure_s3_from_aws_env(environ)
  assert environ["S3_ENDPOINT"] == "http://127.0.0.1:9000"
  assert environ["S3_USE_HTTPS"] == environ["S3_VERIFY_SSL"] == "0"

  explicit = {"AWS_ENDPOINT_URL": "https://a.example", "S3_ENDPOINT": "b:1"}
  filesystems.configure_s3_from_aws_env(explicit)
  assert explicit["S3_ENDPOINT"] == "b:1"
  assert explicit["S3_USE_HTTPS"] == "1"


def test_importing_the_package_does_not_load_tensorflow():
  loaded = subprocess.run(
      [sys.executable, "-c",
       "import sys, transforms; print(sorted({'tensorflow', 'tensorflow_io'}"
       " & set(sys.modules)))"],
      capture_output=True, text=True, check=True).stdout.strip()
  assert loaded == "[]"


def test_tensorflow_writes_to_s3_and_the_process_exits_cleanly(object_store):
  """A TensorFlow write lands in the bucket; exit_process avoids the plugin's
  abort at exit (status 134), which `sys.exit` would hit."""
  script = textwrap.dedent(f"""
      import sys
      import transforms
      import tensorflow as tf
      from transforms import filesystems
      with tf.io.gfile.GFile("{object_store.uri('tf', 'x.txt')}", "w") as f:
        f.write("from tensorflow")
      print(tf.io.gfile.listdir("{object_store.uri('tf')}"))
      filesystems.exit_process(int(sys.argv[1]))
      """)
  finished = subprocess.run([sys.executable, "-c", script, "7"],
                            env=object_store.env(), capture_output=True,
                            text=True, timeout=300)
  assert finished.returncode == 7, finished.stderr[-2000:]
  assert "['x.txt']" in finished.stdout
  body = object_store.client().get_object(Bucket=object_store.bucket,
                                          Key="tf/x.txt")["Body"].read()
  assert body == b"from tensorflow"


def test_beams_s3_wrapper_reuses_one_client_per_setting():
  boto3_client = prerequisites.module("apache_beam.io.aws.clients.s3.boto3_client")
  shared = boto3_client.boto3
  assert isinstance(shared, filesystems.SharedBoto3Clients)

  settings = {"service_name": "s3", "region_name": "us-east-1",
              "endpoint_url": "http://127.0.0.1:9", "aws_access_key_id": "a",
              "aws_secret_access_key": "b"}
  first = shared.session.Session().client(**settings)
  assert shared.session.Session().client(**settings) is first
  assert shared.session.Session().client(
      **dict(settings, aws_access_key_id="c")) is not first
  assert boto3_client.Client({"s3_endpoint_url": "http://127.0.0.1:9"}).client is (
      boto3_client.Client({"s3_endpoint_url": "http://127.0.0.1:9"}).client)
