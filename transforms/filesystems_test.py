"""transforms.filesystems: tf.io.gfile reaches s3:// in a process of the project,
and Beam's S3 wrapper shares its clients."""

import subprocess
import sys
import textwrap

from tests.object_store import object_store, object_store_server  # noqa: F401  pylint: disable=unused-import
from tests.object_store import StoreProxy
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


def test_s3_calls_are_bounded_unless_the_environment_says_otherwise():
  environ = {"AWS_MAX_ATTEMPTS": "5"}
  filesystems.configure_s3_from_aws_env(environ)
  assert environ == {**filesystems.S3_CALL_BOUNDS, "AWS_MAX_ATTEMPTS": "5"}


def test_tensorflow_gives_up_on_a_store_that_does_not_answer(object_store):
  """The plugin honours the bounds: its `stat` (a HeadObject, then a
  ListObjectsV2) makes each call as many attempts as AWS_MAX_ATTEMPTS says,
  and each attempt gives up after S3_REQUEST_TIMEOUT_MSEC."""
  script = textwrap.dedent(f"""
      import transforms
      import tensorflow as tf
      from transforms import filesystems
      try:
        tf.io.gfile.stat("{object_store.uri('tf')}")
      except tf.errors.NotFoundError:
        print("not found")
      filesystems.exit_process(0)
      """)
  with StoreProxy(object_store.endpoint_url) as proxy:
    proxy.stop_answering()
    finished = subprocess.run(
        [sys.executable, "-c", script],
        env=object_store.env(AWS_ENDPOINT_URL=proxy.endpoint_url,
                             S3_REQUEST_TIMEOUT_MSEC="1000",
                             AWS_MAX_ATTEMPTS="2"),
        capture_output=True, text=True, timeout=120)
    unanswered = proxy.unanswered_requests()
  assert finished.returncode == 0, finished.stderr[-2000:]
  # The plugin says "not found" for a store it cannot reach.
  assert finished.stdout.strip() == "not found"
  assert unanswered == 2 * 2


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
