"""Video-driven e-commerce recommendation stack on TFX and TFRS."""

import pathlib

import setuptools

ROOT = pathlib.Path(__file__).parent
REQUIREMENTS = [
  requirement for requirement in (
    line.split("#", 1)[0].strip()
    for line in (ROOT / "requirements.txt").read_text().splitlines())
  if requirement
]

setuptools.setup(
  name="vrec",
  version="0.1.0",
  description=__doc__,
  long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
  long_description_content_type="text/markdown",
  python_requires=">=3.9,<3.11",
  packages=setuptools.find_packages(
      include=["data*", "transforms*", "models*", "tfx_pipeline*", "serving*",
               "offline_eval*", "benchmarks*"]),
  package_data={"tfx_pipeline": ["schema/*.pbtxt"]},
  install_requires=REQUIREMENTS,
  entry_points={"console_scripts": ["vrec=tfx_pipeline.cli:exit_with_main"]},
)
