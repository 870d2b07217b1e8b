"""YAML pipelines: errors name the file, the line, the stage and the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.runs.config import load_pipeline, parse_pipeline

GOOD = """\
name: gopher
input:
  paths: [data_samples/*.parquet]
output:
  path: output/gopher
stages:
  - datatrove:
      step: datatrove.pipeline.filters.GopherQualityFilter
      args: {min_doc_words: 30}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def test_a_good_pipeline_builds_its_stages_reader_and_writer(tmp_path: Path):
    config = load_pipeline(_write(tmp_path, GOOD))
    pipeline = config.build()
    assert config.name == "gopher"
    assert [s.name for s in pipeline.stages] == ["datatrove"]
    assert pipeline.stages[0].step.min_doc_words == 30
    assert pipeline.writer is not None and pipeline.writer.path == "output/gopher"


def test_unknown_stage_names_the_line_and_suggests(tmp_path: Path):
    text = GOOD.replace("  - datatrove:", "  - datatrov:")
    with pytest.raises(ConfigError) as error:
        load_pipeline(_write(tmp_path, text))
    message = str(error.value)
    assert "pipeline.yaml line 7" in message
    assert "unknown stage 'datatrov'" in message and "did you mean 'datatrove'" in message


def test_wrong_parameter_type_names_stage_parameter_and_line(tmp_path: Path):
    text = GOOD.replace("      args: {min_doc_words: 30}", "      mode: [not, a, mode]")
    with pytest.raises(ConfigError) as error:
        load_pipeline(_write(tmp_path, text))
    message = str(error.value)
    assert "pipeline.yaml line 9" in message
    assert "stage 'datatrove', parameter 'mode'" in message


def test_unknown_parameter_is_rejected(tmp_path: Path):
    text = GOOD.replace("      args: {min_doc_words: 30}", "      treshold: 3")
    with pytest.raises(ConfigError, match=r"line 9: stage 'datatrove', parameter 'treshold'"):
        load_pipeline(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("input: [\n", "not valid YAML"),
        ("- a\n- b\n", "a pipeline file is a mapping"),
        ("input: {paths: [x]}\n", "the 'output' section is missing"),
        ("input: {paths: [x]}\noutput: {path: o}\nstagse: []\n", "unknown section(s) 'stagse'"),
        ("input: {paths: [x], batch_size: -3}\noutput: {path: o}\n", "line 1: section 'input'"),
        ("input: {paths: [x]}\noutput: {path: o}\nstages:\n  - {a: 1, b: 2}\n", "line 4"),
        (
            "input: {paths: [x]}\noutput: {path: o}\nstages:\n  - datatrove: 3\n",
            "must be a mapping",
        ),
    ],
)
def test_malformed_files_get_clear_errors(text: str, expected: str):
    with pytest.raises(ConfigError) as error:
        parse_pipeline(text, "p.yaml").build_stages()
    assert expected in str(error.value)


def test_yaml_cannot_construct_python_objects(tmp_path: Path):
    text = GOOD + "  - !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pipeline(_write(tmp_path, text))


def test_datatrove_steps_are_limited_to_datatrove(tmp_path: Path):
    text = GOOD.replace("datatrove.pipeline.filters.GopherQualityFilter", "os.system")
    with pytest.raises(ConfigError, match=r"only classes under datatrove\.pipeline\."):
        load_pipeline(_write(tmp_path, text))
