"""The s3-tests copy is run by `s3tests_runner.py` in a pytest of its own, with its own
pytest.ini and a config file per target; the project's pytest must not collect it."""

collect_ignore = ["s3-tests"]
